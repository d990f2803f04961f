"""Tiers: the shipped three, the catalogue that adds configured and stored ones, and ``Tier`` — a
tier with a tenant's overrides applied, compiled for the checks made on every request.

Shipped tiers carry no resource guarantee: a guarantee is a contract with one tenant, given by
that tenant's overrides (a tier-wide guarantee would be promised to every tenant on the tier).
``enterprise``, the default tier, allows everything and limits nothing, so a single-tenant
deployment behaves as if there were no tiers.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from inferlab.config.tenants import (
    FEATURES,
    Feature,
    NamedTier,
    ResourceShareSpec,
    SloTargets,
    TierLimits,
    TierSpec,
)
from inferlab.errors import InvalidRequest

TIER_HEADER = "x-inferlab-tier"  # on every response to a caller: the tier it was served on
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}

SHIPPED_TIERS: dict[str, TierSpec] = {
    "free": TierSpec(
        description="Try it out: small answers, shared capacity, served last when the pool is busy",
        max_context_tokens=4096, max_tokens=512,
        features=["streaming", "cache", "embeddings", "planning"],
        priority="low", weight=1.0,
        tenant_limits=TierLimits(rpm=60, tpm=40_000, max_concurrent=4, daily_tokens=500_000),
        slo=SloTargets(ttft_p95_ms=5000, availability=0.99),
        resources=ResourceShareSpec(limit_share=0.5),
    ),
    "pro": TierSpec(
        description="Production use: long contexts, code routes, served before the free tier",
        max_context_tokens=32_768, max_tokens=4096,
        features=["streaming", "cache", "embeddings", "code", "planning"],
        priority="normal", weight=4.0,
        tenant_limits=TierLimits(rpm=600, tpm=400_000, max_concurrent=32, monthly_tokens=100_000_000),
        slo=SloTargets(ttft_p95_ms=2000, tpot_p95_ms=100, availability=0.995),
    ),
    "enterprise": TierSpec(
        description="Everything, unlimited by default; guarantees per tenant by contract",
        priority="high", weight=16.0,
        slo=SloTargets(ttft_p95_ms=1000, tpot_p95_ms=50, availability=0.999),
    ),
}


def _models_pattern(models: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(model)})" for model in models))


@dataclass(frozen=True, slots=True)
class Tier:
    """A tenant's tier as it applies to it: the tier's fields with the tenant's overrides."""

    name: str
    spec: TierSpec
    features: frozenset[str]
    priority: int
    _models: re.Pattern[str]

    @classmethod
    def of(cls, name: str, spec: TierSpec) -> Tier:
        return cls(name, spec, frozenset(spec.features), PRIORITY_RANK[spec.priority], _models_pattern(spec.models))

    def allows_model(self, model: str) -> bool:
        return self._models.fullmatch(model) is not None

    def allows(self, feature: Feature) -> bool:
        return feature in self.features

    def share_of(self, pool: str) -> ResourceShareSpec:
        return self.spec.pools.get(pool, self.spec.resources)


def with_overrides(spec: TierSpec, overrides: Mapping[str, Any] | None) -> TierSpec:
    """``spec`` with a tenant's overrides (any tier field; nested sections merge field by field)."""
    if not overrides:
        return spec
    merged = spec.model_dump()
    for field, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(field), dict) and field != "pools":
            merged[field] = {**merged[field], **value}
        else:
            merged[field] = value
    return TierSpec.model_validate(merged)


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides as stored: only tier fields, each valid (``InvalidRequest`` naming the first bad one)."""
    try:
        with_overrides(TierSpec(), overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = "not a tier field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidRequest(f"Invalid override: {field}: {message}", param=field, code="invalid_value") from None
    return dict(overrides)


class TierCatalogue:
    """The shipped tiers, replaced or extended by the configured ones, then by the stored ones."""

    def __init__(self, configured: Iterable[NamedTier] = ()) -> None:
        self._base: dict[str, TierSpec] = dict(SHIPPED_TIERS)
        for tier in configured:
            self._base[tier.name] = TierSpec.model_validate(tier.model_dump(exclude={"name"}))
        self._stored: dict[str, TierSpec] = {}

    def use_stored(self, stored: Mapping[str, TierSpec]) -> None:
        self._stored = dict(stored)

    def get(self, name: str) -> TierSpec | None:
        return self._stored.get(name) or self._base.get(name)

    def names(self) -> list[str]:
        return sorted({*self._base, *self._stored})

    def origin(self, name: str) -> str:
        if name in self._stored:
            return "stored"
        return "shipped" if name in SHIPPED_TIERS and SHIPPED_TIERS[name] is self._base.get(name) else "configured"

    def is_base(self, name: str) -> bool:
        return name in self._base


__all__ = [
    "FEATURES", "PRIORITY_RANK", "SHIPPED_TIERS", "TIER_HEADER", "Tier", "TierCatalogue", "check_overrides", "with_overrides",
]
