"""Build the admission step from the settings (called by the composition root)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from inferlab.api.openai_routes import Limits
from inferlab.config import Settings
from inferlab.metrics import GatewayMetrics
from inferlab.ratelimit.admission import Admission
from inferlab.ratelimit.identity import ClientAddress, Identity
from inferlab.ratelimit.memory import MemoryRateLimiter
from inferlab.ratelimit.overrides import OverrideCache
from inferlab.ratelimit.policy import LimitPolicy
from inferlab.ratelimit.protocol import RateLimiter


def _identify(authenticated: bool, addresses: ClientAddress) -> Callable[[web.Request], Identity]:
    if authenticated:
        from inferlab.auth.middleware import PRINCIPAL

        def by_principal(request: web.Request) -> Identity:
            principal = request.get(PRINCIPAL)
            if principal is not None:
                return Identity(principal.key_id or "user:" + principal.user_id, principal.user_id, principal.tenant_id)
            return by_address(request)

    def by_address(request: web.Request) -> Identity:
        client = "ip:" + addresses.of(request.remote, request.headers.get("X-Forwarded-For"))
        return Identity(client, client, "default")

    return by_principal if authenticated else by_address


def _limiter(
    app: web.Application, settings: Settings, metrics: GatewayMetrics | None, logger: logging.Logger
) -> RateLimiter:
    rl = settings.ratelimit
    use_redis = rl.backend == "redis" or (rl.backend == "auto" and settings.redis_url is not None)
    if not use_redis or settings.redis_url is None:
        return MemoryRateLimiter()
    from redis.exceptions import RedisError

    from inferlab.ratelimit.redis import RedisRateLimiter
    from inferlab.ratelimit.resilient import ResilientLimiter
    from inferlab.redisconn import redis_client

    client = redis_client(settings.redis_url.get_secret_value(), timeout_s=rl.redis_timeout_s)
    on_fallback = (lambda policy: metrics.ratelimit_fallbacks.labels(policy).inc()) if metrics else None
    limiter = ResilientLimiter(
        RedisRateLimiter(client, rl.redis_prefix), (RedisError,), rl.failure, expected_replicas=rl.expected_replicas,
        timeout_s=rl.redis_timeout_s, retry_s=rl.redis_retry_s, logger=logger, on_fallback=on_fallback,
    )

    async def lifespan(_: web.Application) -> AsyncIterator[None]:
        yield
        await limiter.aclose()

    app.cleanup_ctx.append(lifespan)
    from inferlab.api.readiness import DependencyCheck, register

    register(app, DependencyCheck("redis", client.ping, critical=_fails_closed(settings), timeout_s=rl.redis_timeout_s))
    return limiter


def _fails_closed(settings: Settings) -> bool:
    """Would a Redis outage refuse every request? Yes when a configured default limit fails closed."""
    failure, rates = settings.ratelimit.failure, (("requests", "rpm"), ("tokens", "tpm"), ("concurrent", "max_concurrent"))
    if any(getattr(failure, kind) == "fail-closed" and getattr(spec, field) is not None
           for spec in settings.ratelimit.limits for kind, field in rates):
        return True
    budgets = ("daily_tokens", "monthly_tokens", "daily_spend_usd", "monthly_spend_usd")
    return failure.quota == "fail-closed" and any(
        getattr(spec, field) is not None for spec in settings.quota.limits for field in budgets
    )


def build_limits(
    app: web.Application, settings: Settings, metrics: GatewayMetrics | None, logger: logging.Logger,
    authenticated: bool, overrides: OverrideCache | None = None,
) -> Limits | None:
    policy = LimitPolicy(settings.ratelimit, settings.quota.limits, settings.pricing)
    if not policy.active and overrides is None:
        return None  # no limits configured: nothing added per request
    on_reject = (lambda kind: metrics.ratelimit_rejections.labels(kind).inc()) if metrics else None
    admission = Admission(_limiter(app, settings, metrics, logger), policy, on_reject, logger=logger)

    async def renewals(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(admission.keep_leases(settings.ratelimit.lease_ttl_s / 3))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(renewals)  # after the limiter's: stopped before the limiter closes
    if metrics is not None:
        metrics.ratelimit_outstanding.set_function(lambda: admission.outstanding)
    identify = _identify(authenticated, ClientAddress(settings.trusted_proxies))
    return Limits(admission, identify, settings.ratelimit.default_max_tokens, overrides.of if overrides else None)
