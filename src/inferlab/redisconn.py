"""One Redis client per app, built from ``redis_url`` (imported only when Redis is configured)."""

from __future__ import annotations

from typing import Any


def redis_client(url: str, *, timeout_s: float, max_connections: int = 256) -> Any:
    """A ``redis.asyncio.Redis`` whose every wait is bounded: connect, read, and a pool slot."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections
