"""Month-end forecasts of a tenant's tokens and spend from its daily history, with an interval.

The model is Holt-Winters, additive, with a weekly season (``m = 7``): level ``ℓ``, trend ``b`` and
seasonal ``s``, updated each day by

    ℓₜ = α(yₜ − sₜ₋ₘ) + (1 − α)(ℓₜ₋₁ + bₜ₋₁),   bₜ = β(ℓₜ − ℓₜ₋₁) + (1 − β)bₜ₋₁,
    sₜ = γ(yₜ − ℓₜ₋₁ − bₜ₋₁) + (1 − γ)sₜ₋ₘ,      ŷₜ₊ₕ = ℓₜ + h·bₜ + sₜ₊ₕ₋ₘ⌈h/m⌉

with (α, β, γ) chosen on a grid to minimise the one-step-ahead squared error. With under two
weeks of history it falls back to Holt's linear trend without a season, and under four days to the
mean day. The interval is the model's own: in its state-space form an error εₜ₊ₖ enters every
later forecast with weight ``cⱼ = α(1 + jβ) + γ(1 − α)·[m | j]``, so the error of the sum of the
next ``H`` days has variance ``σ² Σᵢ₌₀^{H−1} (Σⱼ₌₀^{i} cⱼ)²`` (c₀ = 1), σ² the one-step residual
variance; the bounds are ± z·σ_sum (z = 1.96: 95 %) around the expected total, never below what
the month has already used.

``backtest`` holds out the last days of a history, fits on the rest, forecasts them, and reports
MAPE (over the held-out days with usage), WAPE (Σ|error| ÷ Σ actual, defined with idle days) and
sMAPE (mean 2|error| ÷ (|actual| + |forecast|)).
Pure numpy over plain lists: no I/O here (``Forecaster`` below reads the analytics).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from inferlab.metering.analytics import UsageAnalytics, UsageQuery

PERIOD = 7
Z95 = 1.959964
GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
TREND_GRID = (0.0, 0.01, 0.05, 0.1, 0.2)
Method = Literal["holt-winters", "holt", "mean"]


@dataclass(frozen=True)
class Fitted:
    method: Method
    alpha: float
    beta: float
    gamma: float
    level: float
    trend: float
    season: tuple[float, ...]  # the last m seasonal terms, oldest first (empty without a season)
    sigma: float  # one-step residual standard deviation
    observations: int

    def forecast(self, horizon: int) -> list[float]:
        m = len(self.season)
        return [self.level + h * self.trend + (self.season[(h - 1) % m] if m else 0.0) for h in range(1, horizon + 1)]

    def sum_sd(self, horizon: int) -> float:
        """Standard deviation of the error of the sum of the next ``horizon`` forecasts."""
        if self.method == "mean":  # each day's noise, and the mean's own error on every day
            return self.sigma * math.sqrt(horizon + horizon**2 / max(1, self.observations))
        m = len(self.season)
        weights = [1.0] + [self.alpha * (1 + j * self.beta) + (self.gamma * (1 - self.alpha) if m and j % m == 0 else 0)
                           for j in range(1, horizon)]
        cumulative = np.cumsum(weights)
        return self.sigma * math.sqrt(float(np.sum(cumulative**2)))


def _run(y: Any, alpha: Any, beta: Any, gamma: Any, m: int) -> tuple[Any, Any, Any, Any]:
    """The recursions for many parameter sets at once (arrays of α, β, γ), from a simple start:
    (level, trend, season [sets × m], SSE of the one-step errors), one entry per set."""
    sets = len(alpha)
    if m:
        level = np.full(sets, y[:m].mean())
        trend = np.full(sets, (y[m:2 * m].mean() - y[:m].mean()) / m)
        season = np.tile(y[:m] - y[:m].mean(), (sets, 1))
        start = m
    else:
        level, trend, season, start = np.full(sets, y[0]), np.full(sets, y[1] - y[0]), np.zeros((sets, 0)), 1
    sse = np.zeros(sets)
    for t in range(start, len(y)):
        seasonal = season[:, t % m] if m else 0.0
        error = y[t] - (level + trend + seasonal)
        sse += error * error
        previous = level
        level = alpha * (y[t] - seasonal) + (1 - alpha) * (level + trend)
        trend = beta * (level - previous) + (1 - beta) * trend
        if m:
            season[:, t % m] = gamma * (y[t] - previous - trend) + (1 - gamma) * seasonal
    if m:  # rotate so that column 0 is the term of the day after the last observation
        season = np.roll(season, -(len(y) % m), axis=1)
    return level, trend, season, sse


def fit(series: Sequence[float], period: int = PERIOD) -> Fitted:
    """``period``: the season's length in observations (7: a week of days; the capacity planner
    fits hours with 24 or 168); the season is left out under two periods of history."""
    y = np.asarray(series, dtype=float)
    n = len(y)
    if n < 4:
        mean = float(y.mean()) if n else 0.0
        sigma = float(y.std(ddof=1)) if n > 1 else abs(mean)
        return Fitted("mean", 0.0, 0.0, 0.0, mean, 0.0, (), sigma, n)
    m = period if period and n >= 2 * period else 0
    grid = np.array([(a, b, g) for a in GRID for b in TREND_GRID for g in (GRID if m else (0.0,))])
    level, trend, season, sse = _run(y, grid[:, 0], grid[:, 1], grid[:, 2], m)
    best = int(np.argmin(sse))
    alpha, beta, gamma = (float(v) for v in grid[best])
    sigma = math.sqrt(float(sse[best]) / max(1, n - (m or 1) - 3))
    return Fitted("holt-winters" if m else "holt", alpha, beta, gamma, float(level[best]), float(trend[best]),
                  tuple(float(v) for v in season[best]), sigma, n)


@dataclass(frozen=True)
class Backtest:
    days: int  # observations held out (days here; hours for the capacity planner)
    mape: float | None  # mean |error| / actual over held-out days with usage
    wape: float | None  # Σ |error| / Σ actual
    smape: float | None = None  # mean 2|error| / (|actual| + |forecast|), over points where either is non-zero


def backtest(series: Sequence[float], holdout: int = 14, *, period: int = PERIOD) -> Backtest:
    if len(series) < holdout + 4:
        return Backtest(0, None, None)
    train, test = series[:-holdout], np.asarray(series[-holdout:], dtype=float)
    predicted = np.clip(np.asarray(fit(train, period).forecast(holdout)), 0, None)
    errors = np.abs(predicted - test)
    used = test > 0
    mape = float(np.mean(errors[used] / test[used])) if used.any() else None
    wape = float(errors.sum() / test.sum()) if test.sum() > 0 else None
    scale = np.abs(test) + np.abs(predicted)
    either = scale > 0
    smape = float(np.mean(2 * errors[either] / scale[either])) if either.any() else None
    return Backtest(holdout, mape, wape, smape)


@dataclass(frozen=True)
class MonthForecast:
    """One series' month: used so far, the expected total at month end, and its 95 % interval."""

    used: float
    expected: float
    low: float
    high: float
    method: Method
    backtest: Backtest


def month_end(daily: Mapping[date, float], today: date, *, holdout: int = 14) -> MonthForecast:
    """``daily``: usage per UTC day up to and including ``today`` (today partial). The history starts
    at the first day with usage; a day without usage after it counts as 0."""
    first = min(daily, default=today)
    history = [daily.get(first + timedelta(days=i), 0.0) for i in range((today - first).days)]  # complete days
    month_start = today.replace(day=1)
    used = sum(v for d, v in daily.items() if month_start <= d <= today)
    last_day = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    horizon = (last_day - today).days + 1  # today (its rest) and the days after it
    model = fit(history)
    ahead = [max(0.0, v) for v in model.forecast(horizon)]
    ahead[0] = max(0.0, ahead[0] - daily.get(today, 0.0))  # today: what is still expected beyond its usage so far
    expected = used + sum(ahead)
    spread = Z95 * model.sum_sd(horizon)
    return MonthForecast(used, expected, max(used, expected - spread), expected + spread, model.method,
                         backtest(history, holdout))


@dataclass(frozen=True)
class TenantForecast:
    tenant: str
    month: str  # YYYY-MM
    tokens: MonthForecast
    spend: MonthForecast  # USD

    def as_json(self) -> dict[str, Any]:
        def part(f: MonthForecast, money: bool) -> dict[str, Any]:
            def show(value: float) -> str | int:
                return str(Decimal(value).quantize(Decimal("0.000001"))) if money else round(value)

            return {"used": show(f.used), "expected": show(f.expected), "low": show(f.low), "high": show(f.high),
                    "method": f.method, "backtest": {"holdout_days": f.backtest.days, "mape": f.backtest.mape,
                                                     "wape": f.backtest.wape}}
        return {"object": "usage.forecast", "tenant": self.tenant, "month": self.month,
                "interval": 0.95, "tokens": part(self.tokens, False), "spend_usd": part(self.spend, True)}


class Forecaster:
    """Every tenant's (or the named tenants') month-end forecast from the analytics' daily sums."""

    def __init__(self, analytics: UsageAnalytics, *, history_days: int = 91) -> None:
        self._analytics = analytics
        self._history_days = history_days

    async def forecast(self, today: date, tenants: tuple[str, ...] | None = None) -> list[TenantForecast]:
        start = min(today.replace(day=1), today - timedelta(days=self._history_days))
        rows = await self._analytics.usage(
            UsageQuery(start, today + timedelta(days=1), ("tenant", "day"), tenants=tenants))
        tokens: dict[str, dict[date, float]] = {}
        spend: dict[str, dict[date, float]] = {}
        for row in rows:
            tenant, day = row.value("tenant"), date.fromisoformat(row.value("day"))
            tokens.setdefault(tenant, {})[day] = float(row.totals.total_tokens)
            spend.setdefault(tenant, {})[day] = float(row.totals.price)
        for tenant in tenants or ():
            tokens.setdefault(tenant, {})
            spend.setdefault(tenant, {})
        month = today.strftime("%Y-%m")
        return [TenantForecast(t, month, month_end(tokens[t], today), month_end(spend[t], today)) for t in sorted(tokens)]
