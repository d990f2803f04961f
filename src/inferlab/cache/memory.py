"""The in-process response cache: an LRU bounded by entries and bytes, entries expire by TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from inferlab.cache.protocol import CachedResponse


class MemoryCache:
    def __init__(self, max_entries: int = 10000, max_bytes: int = 256 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, CachedResponse]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def put(self, key: str, response: CachedResponse, ttl_s: float) -> None:
        size = len(response.body)
        if size > self._max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, response)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, response = self._entries.pop(key)
        self._bytes -= len(response.body)

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0
