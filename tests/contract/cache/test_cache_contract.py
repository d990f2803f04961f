"""The CacheManager contract: what goes in comes out byte for byte, until its TTL."""

from __future__ import annotations

import asyncio

from inferlab.cache import CachedResponse, CacheManager


async def test_round_trip_json_and_sse(cache: CacheManager) -> None:
    assert await cache.get("missing") is None
    whole = CachedResponse("json", b'{"id":"x","choices":[]}')
    stream = CachedResponse("sse", b'data: {"a":1}\n\ndata: [DONE]\n\n')
    await cache.put("a", whole, 60)
    await cache.put("b", stream, 60)
    assert await cache.get("a") == whole
    assert await cache.get("b") == stream


async def test_entries_expire(cache: CacheManager) -> None:
    await cache.put("short", CachedResponse("json", b"{}"), 0.2)
    assert await cache.get("short") is not None
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None


async def test_put_replaces(cache: CacheManager) -> None:
    await cache.put("k", CachedResponse("json", b"1"), 60)
    await cache.put("k", CachedResponse("json", b"2"), 60)
    assert await cache.get("k") == CachedResponse("json", b"2")
