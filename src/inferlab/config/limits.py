"""``ratelimit:`` (requests, tokens and requests in flight per window) and ``quota:`` (token and
spend budgets per calendar day or month)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel

LimitScope = Literal["key", "user", "tenant", "model", "key+model", "user+model", "tenant+model", "global"]
FailurePolicy = Literal["fail-open-local", "fail-closed"]


class LimitSpec(StrictModel):
    """Limits on one scope: every key (user, tenant...) gets its own buckets of these sizes."""

    scope: LimitScope
    rpm: int | None = Field(None, ge=0, description="requests per window")
    tpm: int | None = Field(None, ge=0, description="tokens per window (prompt + max_tokens reserved)")
    max_concurrent: int | None = Field(None, ge=0, description="requests in flight")


class RateLimitFailure(StrictModel):
    """What a replica does while Redis does not answer, per limit type."""

    requests: FailurePolicy = "fail-open-local"
    tokens: FailurePolicy = "fail-open-local"
    concurrent: FailurePolicy = "fail-open-local"
    quota: FailurePolicy = Field("fail-closed", description="budgets: a replica alone cannot keep them exact")


class RateLimitSettings(StrictModel):
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: redis when redis_url is set")
    limits: list[LimitSpec] = Field(default_factory=list, description="defaults per scope")
    window_s: float = Field(60.0, gt=0, description="the sliding window of rpm and tpm")
    default_max_tokens: int = Field(1024, ge=0, description="completion tokens reserved when max_tokens is absent")
    lease_ttl_s: float = Field(
        10.0, gt=0, description="concurrency lease, renewed every third of it while the request lives: "
        "a crashed replica's slots free after this")
    redis_timeout_s: float = Field(0.25, gt=0, description="bound on every Redis call; beyond: failure policy")
    redis_prefix: str = Field("inferlab:rl:", min_length=1, description="namespace of the limiter's Redis keys")
    redis_retry_s: float = Field(1.0, gt=0, description="after a Redis failure, try it again after this")
    expected_replicas: int = Field(1, ge=1, description="fail-open-local: each replica enforces limit / this")
    failure: RateLimitFailure = Field(default_factory=RateLimitFailure)


class QuotaSpec(StrictModel):
    """Budgets per calendar day / month (UTC) on one scope; tokens and spend (USD, from ``pricing``)."""

    scope: Literal["key", "user", "tenant"]
    daily_tokens: int | None = Field(None, ge=0)
    monthly_tokens: int | None = Field(None, ge=0)
    daily_spend_usd: float | None = Field(None, ge=0)
    monthly_spend_usd: float | None = Field(None, ge=0)


class QuotaSettings(StrictModel):
    limits: list[QuotaSpec] = Field(default_factory=list, description="defaults per scope")
