"""Plans: what a tenant pays — flat fee, included tokens, token prices (the price book's, or the
plan's own per model and direction, or graduated / volume bands), minimum — versioned by instant.

A plan's versions come from ``billing.plans`` and from the store (added through the admin API);
a stored version with the same instant as a configured one replaces it. Each version is resolved
against the one before it (a field left unset carries over), so a lookup is a binary search.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from inferlab.config.billing import Direction, PlanVersion, TokenTiers
from inferlab.metering.pricebook import BEGINNING

ANY_MODEL = "*"


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan version, every field resolved."""

    name: str
    effective: datetime
    flat_fee: Decimal = Decimal(0)
    minimum: Decimal = Decimal(0)
    included_tokens: int = 0
    prices: Mapping[str, Mapping[Direction, Decimal]] = field(default_factory=dict)
    tiers: TokenTiers | None = None

    def price(self, model: str, direction: Direction) -> Decimal | None:
        """The plan's own USD per million for ``model``'s ``direction`` (None: the price book's)."""
        for name in (model, ANY_MODEL):
            found = self.prices.get(name)
            if found is not None and direction in found:
                return found[direction]
        return None


def _resolved(name: str, versions: Iterable[tuple[datetime, PlanVersion]]) -> list[Plan]:
    plans: list[Plan] = []
    for effective, version in versions:
        before = plans[-1] if plans else Plan(name, BEGINNING)
        plan = Plan(
            name, effective,
            flat_fee=version.flat_fee if version.flat_fee is not None else before.flat_fee,
            minimum=version.minimum if version.minimum is not None else before.minimum,
            included_tokens=version.included_tokens if version.included_tokens is not None else before.included_tokens,
            prices=version.prices if version.prices is not None else before.prices,
            tiers=version.tiers if "tiers" in version.model_fields_set else before.tiers,
        )
        plans.append(plan)
    return plans


class PlanBook:
    """Plan name → its versions; ``plan(name, at)`` is the version in force at ``at``."""

    def __init__(self, configured: Mapping[str, list[PlanVersion]],
                 stored: Mapping[str, Mapping[datetime, PlanVersion]] | None = None) -> None:
        self._plans: dict[str, list[Plan]] = {}
        self._starts: dict[str, list[datetime]] = {}
        for name in sorted({*configured, *(stored or {})}):
            by_instant: dict[datetime, PlanVersion] = {}
            for version in configured.get(name, []):
                by_instant[version.effective or BEGINNING] = version
            for instant, version in (stored or {}).get(name, {}).items():
                by_instant[instant] = version
            if BEGINNING not in by_instant:
                by_instant[BEGINNING] = PlanVersion()
            plans = _resolved(name, sorted(by_instant.items()))
            self._plans[name] = plans
            self._starts[name] = [p.effective for p in plans]

    def names(self) -> list[str]:
        return list(self._plans)

    def __contains__(self, name: str) -> bool:
        return name in self._plans

    def plan(self, name: str, at: datetime) -> Plan:
        plans = self._plans[name]
        return plans[max(bisect.bisect_right(self._starts[name], at) - 1, 0)]

    def instants(self, name: str, start: datetime, end: datetime) -> list[datetime]:
        """The instants in ``(start, end)`` where the plan changes."""
        return [i for i in self._starts[name] if start < i < end]

    def versions(self, name: str) -> list[Plan]:
        return list(self._plans[name])
