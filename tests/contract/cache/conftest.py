"""Every cache test runs against each implementation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from inferlab.cache import CacheManager, MemoryCache


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheManager]:
    if request.param == "memory":
        memory = MemoryCache(max_entries=100, max_bytes=1024 * 1024)
        yield memory
        await memory.aclose()
        return
    from inferlab.cache.redis import RedisCache
    from inferlab.redisconn import redis_client

    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis_client(request.getfixturevalue("redis_url"), timeout_s=2.0, max_connections=8)
    manager = RedisCache(client, prefix)
    yield manager
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await manager.aclose()
