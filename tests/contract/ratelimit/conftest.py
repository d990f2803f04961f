"""Every rate-limiter test runs against each implementation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from inferlab.ratelimit import MemoryRateLimiter, RateLimiter


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        memory = MemoryRateLimiter()
        yield memory
        await memory.aclose()
        return
    from inferlab.ratelimit.redis import RedisRateLimiter
    from inferlab.redisconn import redis_client

    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis_client(url, timeout_s=2.0, max_connections=32)
    limiter = RedisRateLimiter(client, prefix)
    yield limiter
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await limiter.aclose()
