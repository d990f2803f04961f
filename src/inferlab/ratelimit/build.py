"""Build the rate-limit step from its settings sections (called by the composition root)."""

from __future__ import annotations

import logging
from typing import Any

from inferlab.config import PricingSettings, QuotaSettings, RateLimitSettings
from inferlab.dependencies import Dependencies, DependencyCheck
from inferlab.lifecycle import Lifecycle
from inferlab.metrics import GatewayMetrics
from inferlab.ratelimit.admission import Admission
from inferlab.ratelimit.memory import MemoryRateLimiter
from inferlab.ratelimit.policy import LimitPolicy
from inferlab.ratelimit.protocol import RateLimiter
from inferlab.ratelimit.step import RateLimits, StoredLimits


def uses_redis(limits: RateLimitSettings, redis_configured: bool) -> bool:
    return limits.backend == "redis" or (limits.backend == "auto" and redis_configured)


def fails_closed(limits: RateLimitSettings, quotas: QuotaSettings) -> bool:
    """Would a Redis outage refuse every request? Yes when a configured default limit fails closed."""
    failure, rates = limits.failure, (("requests", "rpm"), ("tokens", "tpm"), ("concurrent", "max_concurrent"))
    if any(getattr(failure, kind) == "fail-closed" and getattr(spec, field) is not None
           for spec in limits.limits for kind, field in rates):
        return True
    budgets = ("daily_tokens", "monthly_tokens", "daily_spend_usd", "monthly_spend_usd")
    return failure.quota == "fail-closed" and any(
        getattr(spec, field) is not None for spec in quotas.limits for field in budgets
    )


def _limiter(
    limits: RateLimitSettings, quotas: QuotaSettings, redis: Any | None, metrics: GatewayMetrics | None,
    logger: logging.Logger, dependencies: Dependencies,
) -> RateLimiter:
    if redis is None:
        return MemoryRateLimiter()
    from redis.exceptions import RedisError

    from inferlab.ratelimit.redis import RedisRateLimiter
    from inferlab.ratelimit.resilient import ResilientLimiter

    on_fallback = (lambda policy: metrics.ratelimit_fallbacks.labels(policy).inc()) if metrics else None
    limiter = ResilientLimiter(
        RedisRateLimiter(redis, limits.redis_prefix), (RedisError,), limits.failure,
        expected_replicas=limits.expected_replicas, timeout_s=limits.redis_timeout_s, retry_s=limits.redis_retry_s,
        logger=logger, on_fallback=on_fallback,
    )
    # ``redis`` is the process's shared client: its owner (services.py) closes it, once
    dependencies.add(DependencyCheck("redis", redis.ping, critical=fails_closed(limits, quotas),
                                     timeout_s=limits.redis_timeout_s))
    return limiter


def build_rate_limits(
    limits: RateLimitSettings, quotas: QuotaSettings, pricing: PricingSettings, *, redis: Any | None,
    metrics: GatewayMetrics | None, logger: logging.Logger, lifecycle: Lifecycle, dependencies: Dependencies,
    stored: StoredLimits | None = None,
) -> RateLimits | None:
    """The step, or None when nothing is limited (no configured limit and no stored ones)."""
    policy = LimitPolicy(limits, quotas.limits, pricing)
    if not policy.active and stored is None:
        return None  # no limits configured: nothing added per request
    on_reject = (lambda kind: metrics.ratelimit_rejections.labels(kind).inc()) if metrics else None
    limiter = _limiter(limits, quotas, redis, metrics, logger, dependencies)
    admission = Admission(limiter, policy, on_reject, logger=logger)

    lifecycle.background(lambda: admission.keep_leases(limits.lease_ttl_s / 3))  # stopped before Redis closes
    if metrics is not None:
        metrics.ratelimit_outstanding.set_function(lambda: admission.outstanding)
    return RateLimits(admission, limits.default_max_tokens, stored)
