"""Build the cache step from the settings (called by the composition root)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from inferlab.cache.memory import MemoryCache
from inferlab.cache.protocol import CacheManager
from inferlab.cache.responses import ResponseCache
from inferlab.config import Settings
from inferlab.metrics import GatewayMetrics


def _tenant_of(authenticated: bool) -> Callable[[web.Request], str]:
    if not authenticated:
        return lambda request: "default"
    from inferlab.auth.middleware import PRINCIPAL

    def tenant(request: web.Request) -> str:
        principal = request.get(PRINCIPAL)
        return principal.tenant_id if principal is not None else "default"

    return tenant


def build_cache(
    app: web.Application, settings: Settings, metrics: GatewayMetrics | None, logger: logging.Logger,
    authenticated: bool,
) -> ResponseCache:
    config = settings.cache
    use_redis = config.backend == "redis" or (config.backend == "auto" and settings.redis_url is not None)
    manager: CacheManager
    errors: tuple[type[BaseException], ...] = ()
    if use_redis and settings.redis_url is not None:
        from redis.exceptions import RedisError

        from inferlab.cache.redis import RedisCache
        from inferlab.redisconn import redis_client

        client: Any = redis_client(settings.redis_url.get_secret_value(), timeout_s=config.redis_timeout_s)
        manager = RedisCache(client, config.redis_prefix)
        errors = (RedisError,)
        from inferlab.api.readiness import DependencyCheck, register

        register(app, DependencyCheck("cache_redis", client.ping, critical=False, timeout_s=config.redis_timeout_s))
    else:
        manager = MemoryCache(config.max_entries, config.max_bytes)
    on_result = (lambda result: metrics.cache_requests.labels(result).inc()) if metrics else None
    cache = ResponseCache(
        manager, {m.name: m.cache_version() for m in settings.models}, _tenant_of(authenticated),
        ttl_s=config.ttl_s, max_entry_bytes=config.max_entry_bytes, timeout_s=config.redis_timeout_s,
        errors=errors, logger=logger, on_result=on_result,
    )

    async def lifespan(_: web.Application) -> AsyncIterator[None]:
        yield
        await cache.aclose()

    app.cleanup_ctx.append(lifespan)
    return cache
