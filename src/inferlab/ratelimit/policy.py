"""Which buckets a request is charged against, and the response headers the decision produces.

Pure functions over plain data: the limits and quotas configured per scope, overridden per key,
user or tenant (``Overrides``), the caller's identity, the model and the tokens reserved.

Quotas are buckets too: one per calendar period (UTC day, UTC month), named after the period, whose
charges all expire when the period ends. Spend is counted in micro-USD, from the price book.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from inferlab.config import LimitSpec, PricingSettings, QuotaSpec, RateLimitSettings
from inferlab.metering.pricebook import PriceBook
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.protocol import BucketState, Charge, LimitKind

_RATES: tuple[tuple[str, LimitKind], ...] = (("rpm", "requests"), ("tpm", "tokens"), ("max_concurrent", "concurrent"))
_QUOTAS: tuple[tuple[str, str, LimitKind], ...] = (
    ("daily_tokens", "d", "quota_tokens"), ("monthly_tokens", "m", "quota_tokens"),
    ("daily_spend_usd", "d", "quota_spend"), ("monthly_spend_usd", "m", "quota_spend"),
)
MICRO = 1_000_000


@dataclass(frozen=True, slots=True)
class Overrides:
    """Limits stored for one key, user or tenant; None keeps the configured default."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    daily_spend_usd: float | None = None
    monthly_spend_usd: float | None = None


def _scope_id(scope: str, who: Identity, model: str) -> str:
    parts = []
    for part in scope.split("+"):
        if part == "key":
            parts.append("k=" + who.key)
        elif part == "user":
            parts.append("u=" + who.user)
        elif part == "tenant":
            parts.append("t=" + who.tenant)
        elif part == "model":
            parts.append("m=" + model)
        else:
            parts.append("*")
    return "|".join(parts)


def periods(now: datetime) -> dict[str, tuple[str, float]]:
    """Current UTC day and month: their names and the seconds until each ends."""
    day_end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    month_end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return {
        "d": (now.strftime("%Y-%m-%d"), (day_end - now).total_seconds()),
        "m": (now.strftime("%Y-%m"), (month_end - now).total_seconds()),
    }


class _PeriodClock:
    """``periods()`` for the current time, its names formatted once per UTC day, not per request."""

    __slots__ = ("_day", "_day_end", "_month", "_month_end")

    def __init__(self) -> None:
        self._day_end = 0.0  # a timestamp: recompute at or after it
        self._month_end = 0.0
        self._day = self._month = ""

    def now(self) -> dict[str, tuple[str, float]]:
        now = time.time()
        if now >= self._day_end:
            current = datetime.fromtimestamp(now, UTC)
            found = periods(current)
            self._day, self._day_end = found["d"][0], now + found["d"][1]
            self._month, self._month_end = found["m"][0], now + found["m"][1]
        return {"d": (self._day, self._day_end - now), "m": (self._month, self._month_end - now)}


class Pricing:
    """Spend in micro-USD from the price book in force now (``Decimal`` rates, rounded up)."""

    def __init__(self, settings: PricingSettings) -> None:
        self._book = PriceBook(settings)

    def micro_usd(self, model: str, prompt: int, completion: int) -> int:
        rates = self._book.rates(model)
        return math.ceil(prompt * rates.input + completion * rates.output)


def _limit(spec: object, override: Overrides | None, field: str) -> float | None:
    value: float | None = getattr(override, field, None) if override is not None else None
    if value is None:
        value = getattr(spec, field)
    return value


class LimitPolicy:
    def __init__(
        self, settings: RateLimitSettings, quotas: Sequence[QuotaSpec] = (), pricing: PricingSettings | None = None
    ) -> None:
        self._settings = settings
        # scopes whose limits may exist only in the store
        stored_only: tuple[Literal["key", "user", "tenant"], ...] = ("key", "user", "tenant")
        self._limits: Sequence[LimitSpec] = [
            *settings.limits, *(LimitSpec(scope=s) for s in stored_only if all(x.scope != s for x in settings.limits))
        ]
        self._quotas: Sequence[QuotaSpec] = [
            *quotas, *(QuotaSpec(scope=s) for s in stored_only if all(q.scope != s for q in quotas))
        ]
        self.pricing = Pricing(pricing or PricingSettings())
        self._clock = _PeriodClock()

    @property
    def active(self) -> bool:
        rates = any(getattr(s, f) is not None for s in self._limits for f, _ in _RATES)
        return rates or any(getattr(q, f) is not None for q in self._quotas for f, _, _ in _QUOTAS)

    def charges(
        self, who: Identity, model: str, prompt: int, completion: int,
        overrides: Mapping[str, Overrides] | None = None, now: datetime | None = None,
    ) -> list[Charge]:
        """``overrides``: scope name (key/user/tenant) -> stored limits, replacing that scope's defaults."""
        settings = self._settings
        tokens = prompt + completion
        found: list[Charge] = []
        for spec in self._limits:
            override = overrides.get(spec.scope) if overrides else None
            where = _scope_id(spec.scope, who, model)
            for field, kind in _RATES:
                limit = _limit(spec, override, field)
                if limit is None:
                    continue
                if kind == "requests":
                    found.append(Charge(f"r:{where}", int(limit), 1, settings.window_s, kind, field, spec.scope))
                elif kind == "tokens":
                    found.append(Charge(f"t:{where}", int(limit), tokens, settings.window_s, kind, field, spec.scope))
                else:
                    found.append(Charge(f"c:{where}", int(limit), 1, settings.lease_ttl_s, kind, field, spec.scope))
        if self._quotas and (overrides or any(_limit(q, None, f) is not None for q in self._quotas for f, _, _ in _QUOTAS)):
            current = periods(now) if now is not None else self._clock.now()
            spend = self.pricing.micro_usd(model, prompt, completion)
            for quota in self._quotas:
                override = overrides.get(quota.scope) if overrides else None
                where = _scope_id(quota.scope, who, model)
                for field, period, kind in _QUOTAS:
                    limit = _limit(quota, override, field)
                    if limit is None:
                        continue
                    name, ttl = current[period]
                    if kind == "quota_tokens":
                        found.append(Charge(f"qt:{name}:{where}", int(limit), tokens, ttl, kind, field, quota.scope))
                    else:
                        found.append(Charge(f"qs:{name}:{where}", round(limit * MICRO), spend, ttl, kind, field, quota.scope))
        return found


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``20ms``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def limit_headers(charges: Sequence[Charge], states: Sequence[BucketState]) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` trios, from the tightest requests bucket and tokens bucket."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        tightest: BucketState | None = None
        for charge, state in zip(charges, states, strict=True):
            if charge.kind == kind and (tightest is None or state.remaining < tightest.remaining):
                tightest = state
        if tightest is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
            headers[f"x-ratelimit-reset-{kind}"] = _duration(tightest.reset_s)
    return headers
