"""Every cache test runs against each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from inferlab.cache import CacheManager, MemoryCache
from inferlab.testing.pytest_plugin import RedisNamespace


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def implementation(request: pytest.FixtureRequest) -> CacheManager:
    """Built outside the event loop: asking for the async ``redis_namespace`` from an async fixture fails."""
    if request.param == "memory":
        return MemoryCache(max_entries=100, max_bytes=1024 * 1024)
    from inferlab.cache.redis import RedisCache

    namespace: RedisNamespace = request.getfixturevalue("redis_namespace")
    return RedisCache(namespace.client, namespace.prefix)


@pytest.fixture
async def cache(implementation: CacheManager) -> AsyncIterator[CacheManager]:
    yield implementation
    await implementation.aclose()
