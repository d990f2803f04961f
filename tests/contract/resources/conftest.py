"""Every allocator test runs against each implementation. ``make_allocator`` builds another
allocator over the same state — the same instance in memory (one process), an allocator with its
own client on the same Redis namespace (another gateway) — so a test can play several gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from inferlab.resources import MemoryAllocator, ResourceAllocator
from inferlab.testing.pytest_plugin import RedisNamespace

IMPLEMENTATIONS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]

MakeAllocator = Callable[..., ResourceAllocator]


@pytest.fixture(params=IMPLEMENTATIONS)
def namespace(request: pytest.FixtureRequest) -> RedisNamespace | None:
    """The Redis namespace (None: the memory implementation). Asked for outside the event loop:
    asking for the async ``redis_namespace`` from an async fixture fails."""
    if request.param == "memory":
        return None
    namespace: RedisNamespace = request.getfixturevalue("redis_namespace")
    return namespace


@pytest.fixture
async def make_allocator(namespace: RedisNamespace | None) -> AsyncIterator[MakeAllocator]:
    made: list[ResourceAllocator] = []
    clients: list[Any] = []
    memory: dict[float | None, MemoryAllocator] = {}

    def make(lease_ttl_s: float | None = None) -> ResourceAllocator:
        if namespace is None:
            if lease_ttl_s not in memory:
                memory[lease_ttl_s] = MemoryAllocator(lease_ttl_s)
                made.append(memory[lease_ttl_s])
            return memory[lease_ttl_s]
        from inferlab.redisconn import redis_client
        from inferlab.resources.redis import RedisAllocator

        client = redis_client(namespace.url, timeout_s=2.0, max_connections=8)
        clients.append(client)
        allocator = RedisAllocator(client, namespace.prefix, lease_ttl_s=lease_ttl_s or 30.0)
        made.append(allocator)
        return allocator

    yield make
    for allocator in made:
        await allocator.aclose()
    for client in clients:
        await client.aclose()


@pytest.fixture
def allocator(make_allocator: MakeAllocator) -> ResourceAllocator:
    return make_allocator()
