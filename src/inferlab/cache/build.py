"""Build the cache step from its settings section (called by the composition root)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from inferlab.cache.memory import MemoryCache
from inferlab.cache.protocol import CacheManager
from inferlab.cache.responses import ResponseCache
from inferlab.cache.step import CacheResponses
from inferlab.config import CacheSettings
from inferlab.dependencies import Dependencies, DependencyCheck
from inferlab.metrics import GatewayMetrics


def uses_redis(config: CacheSettings, redis_configured: bool) -> bool:
    return config.backend == "redis" or (config.backend == "auto" and redis_configured)


def build_cache(
    config: CacheSettings, versions: Mapping[str, str], *, redis: Any | None, metrics: GatewayMetrics | None,
    logger: logging.Logger, dependencies: Dependencies,
) -> CacheResponses:
    """``versions``: each model's cache version (a new version never sees the old one's answers)."""
    manager: CacheManager
    errors: tuple[type[BaseException], ...] = ()
    if redis is not None:
        from redis.exceptions import RedisError

        from inferlab.cache.redis import RedisCache

        manager = RedisCache(redis, config.redis_prefix)
        errors = (RedisError,)
        dependencies.add(DependencyCheck("cache_redis", redis.ping, critical=False, timeout_s=config.redis_timeout_s))
    else:
        manager = MemoryCache(config.max_entries, config.max_bytes)
    on_result = (lambda result: metrics.cache_requests.labels(result).inc()) if metrics else None
    cache = ResponseCache(
        manager, versions, ttl_s=config.ttl_s, max_entry_bytes=config.max_entry_bytes,
        timeout_s=config.redis_timeout_s, errors=errors, logger=logger, on_result=on_result,
    )
    # nothing to close: a memory cache is just memory, and ``redis`` is the process's shared client,
    # closed once by its owner (services.py)
    return CacheResponses(cache)
