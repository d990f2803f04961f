"""``tenants:``: tiers as data — what a tier lets its tenants use, and how much of the hardware.

A tier is a named set of rules; every tenant is on one, and may override any of its fields. Three
tiers ship (``free``, ``pro``, ``enterprise``, see ``inferlab.tenants.tier``); ``tiers:`` here adds
tiers or replaces a shipped one by name, and platform admins add more through the admin API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from inferlab.config.base import StrictModel

Feature = Literal["streaming", "cache", "embeddings", "code", "planning", "batch"]
FEATURES: tuple[Feature, ...] = ("streaming", "cache", "embeddings", "code", "planning", "batch")
PriorityClass = Literal["low", "normal", "high", "critical"]
CapMode = Literal["refuse", "clamp"]
TIER_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class TierLimits(StrictModel):
    """Rate limits and quotas, applied unless a stored limit for the subject says otherwise."""

    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)
    max_concurrent: int | None = Field(None, ge=0)
    daily_tokens: int | None = Field(None, ge=0)
    monthly_tokens: int | None = Field(None, ge=0)
    daily_spend_usd: float | None = Field(None, ge=0)
    monthly_spend_usd: float | None = Field(None, ge=0)


class SloTargets(StrictModel):
    """What the tier is promised; the scheduler and the dashboards measure against it."""

    ttft_p95_ms: float | None = Field(None, gt=0)
    tpot_p95_ms: float | None = Field(None, gt=0)
    availability: float | None = Field(None, gt=0, le=1)


class ResourceShareSpec(StrictModel):
    """A tenant's share of one model pool: a guarantee it always gets, a limit it never passes, and
    whether it may borrow idle capacity between the two. A guarantee or limit is a number of
    sequences and KV tokens, or a fraction of the pool's capacity (``*_share``); both may be
    given, and the larger guarantee / smaller limit wins."""

    guarantee_sequences: int = Field(0, ge=0)
    guarantee_kv_tokens: int = Field(0, ge=0)
    guarantee_share: float = Field(0.0, ge=0, le=1)
    limit_sequences: int | None = Field(None, ge=0)
    limit_kv_tokens: int | None = Field(None, ge=0)
    limit_share: float | None = Field(None, ge=0, le=1)
    may_borrow: bool = True


class TierSpec(StrictModel):
    """Every field of a tier. A tenant's overrides are the same fields, each optional."""

    description: str = ""
    models: list[str] = Field(["*"], min_length=1, description="model names or globs (fnmatch) the tier may use")
    max_context_tokens: int | None = Field(None, ge=1, description="prompt + max_tokens, estimated")
    max_tokens: int | None = Field(None, ge=1, description="cap on max_tokens (max_completion_tokens) × n")
    over_cap: CapMode = Field("refuse", description="a request over a cap: refuse (400) or clamp max_tokens")
    features: list[Feature] = Field(default_factory=lambda: list(FEATURES))
    priority: PriorityClass = "normal"
    weight: float = Field(1.0, gt=0, description="fair-share weight against other tenants")
    tenant_limits: TierLimits = Field(default_factory=TierLimits, description="per tenant, all its keys together")
    key_limits: TierLimits = Field(default_factory=TierLimits, description="per key")
    slo: SloTargets = Field(default_factory=SloTargets)
    deadline_ms: float | None = Field(
        None, gt=0, description="a request that names no deadline (x-inferlab-deadline-ms) must start within "
                                "this; one that cannot is answered 503 + Retry-After at once")
    resources: ResourceShareSpec = Field(default_factory=ResourceShareSpec, description="share of every pool")
    pools: dict[str, ResourceShareSpec] = Field(default_factory=dict, description="per pool, instead of resources")

    @field_validator("features")
    @classmethod
    def _unique(cls, features: list[Feature]) -> list[Feature]:
        return sorted(set(features), key=FEATURES.index)


class NamedTier(TierSpec):
    name: str = Field(pattern=TIER_NAME)


class TenantSettings(StrictModel):
    default_tier: str = Field(
        "enterprise", pattern=TIER_NAME,
        description="the tier of a tenant that names none (the default tenant included): everything allowed")
    tiers: list[NamedTier] = Field(default_factory=list, description="added to, or replacing, the shipped tiers")
    top_tenants_in_metrics: int = Field(
        20, ge=0, description="tenants with their own metric labels; the rest are counted as 'other'")
