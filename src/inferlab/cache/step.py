"""The cache step: answer from the cache, or record the answer and store it after a complete success."""

from __future__ import annotations

from typing import Literal

from inferlab.cache.keys import HEADER
from inferlab.cache.protocol import CachedResponse
from inferlab.cache.responses import ResponseCache
from inferlab.pipeline import Call, Ending, Next, Reply


class CacheResponses:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        key = self.cache.key(call.caller.tenant_id, call.cache_mode, call.route, call.body, pool=call.pool)
        if key is None:
            call.headers[HEADER] = "bypass"
            return await call_next(call)
        hit = await self.cache.get(key)
        if hit is not None:
            call.headers[HEADER] = "hit"
            call.usage.nothing()  # no engine work: nothing to charge beyond the request itself
            return Reply(replay=hit.body)
        call.headers[HEADER] = "miss"
        recording: list[bytes] = []
        if call.stream:  # tapped from the first event on (a tap added after call_next could miss it)
            call.taps.append(recording.append)
        reply = await call_next(call)
        if reply.response is not None:
            call.defer(_Store(self.cache, key, "json", [reply.response.encoded()]))
        elif reply.streamed:
            call.defer(_Store(self.cache, key, "sse", recording))
        return reply


class _Store:
    """Store what the client received, only when it received all of it."""

    __slots__ = ("_cache", "_key", "_kind", "_parts")

    def __init__(self, cache: ResponseCache, key: str, kind: Literal["json", "sse"], parts: list[bytes]) -> None:
        self._cache = cache
        self._key = key
        self._kind = kind
        self._parts = parts

    async def __call__(self, ending: Ending) -> None:
        if ending.ok:
            await self._cache.put(self._key, CachedResponse(self._kind, b"".join(self._parts)))
