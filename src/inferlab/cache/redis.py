"""The Redis response cache: one ``GET`` per lookup, one ``SET ... PX`` per store. Total size is
Redis's own business (``maxmemory`` with an LRU eviction policy); entries are bounded by
``max_entry_bytes`` before they get here."""

from __future__ import annotations

from typing import Any

from inferlab.cache.protocol import CachedResponse


class RedisCache:
    def __init__(self, client: Any, prefix: str = "inferlab:cache:") -> None:
        self._client = client
        self._prefix = prefix

    async def get(self, key: str) -> CachedResponse | None:
        raw = await self._client.get(self._prefix + key)
        return None if raw is None else CachedResponse.decode(bytes(raw))

    async def put(self, key: str, response: CachedResponse, ttl_s: float) -> None:
        await self._client.set(self._prefix + key, response.encode(), px=max(1, int(ttl_s * 1000)))

    async def aclose(self) -> None:
        await self._client.aclose()
