"""Every rate-limiter test runs against each implementation, and against ``ResilientLimiter``
wrapping each: while its primary answers, the wrapper keeps the same contract."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from inferlab.config import RateLimitFailure
from inferlab.ratelimit import MemoryRateLimiter, RateLimiter
from inferlab.ratelimit.resilient import ResilientLimiter
from inferlab.testing.pytest_plugin import RedisNamespace

IMPLEMENTATIONS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    "resilient-memory",
    pytest.param("resilient-redis", marks=pytest.mark.redis),
]


def _primary(kind: str, request: pytest.FixtureRequest) -> tuple[RateLimiter, tuple[type[BaseException], ...]]:
    if kind == "memory":
        return MemoryRateLimiter(), ()
    from redis.exceptions import RedisError

    from inferlab.ratelimit.redis import RedisRateLimiter

    namespace: RedisNamespace = request.getfixturevalue("redis_namespace")
    return RedisRateLimiter(namespace.client, namespace.prefix), (RedisError,)


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> RateLimiter:
    """Built outside the event loop: asking for the async ``redis_namespace`` from an async fixture fails."""
    kind = str(request.param)
    primary, errors = _primary(kind.removeprefix("resilient-"), request)
    if not kind.startswith("resilient-"):
        return primary
    return ResilientLimiter(primary, errors, RateLimitFailure(), expected_replicas=1, timeout_s=2.0, retry_s=1.0,
                            logger=logging.getLogger("inferlab.test.ratelimit"))


@pytest.fixture
async def limiter(implementation: RateLimiter) -> AsyncIterator[RateLimiter]:
    yield implementation
    await implementation.aclose()
