from __future__ import annotations

from inferlab.cache import CachedResponse, MemoryCache


async def test_lru_bounds_entries_and_bytes() -> None:
    cache = MemoryCache(max_entries=2, max_bytes=10)
    await cache.put("a", CachedResponse("json", b"12345"), 60)
    await cache.put("b", CachedResponse("json", b"12345"), 60)
    assert await cache.get("a") is not None  # a is now the most recent
    await cache.put("c", CachedResponse("json", b"1"), 60)
    assert await cache.get("b") is None and await cache.get("a") is not None
    await cache.put("huge", CachedResponse("json", b"x" * 11), 60)
    assert await cache.get("huge") is None
