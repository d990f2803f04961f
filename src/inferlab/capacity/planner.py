"""``CapacityPlanner``: how many replicas each model needs over the next days, and when to add them.

For each model with usage:

1. its **demand**: requests per UTC hour from the usage ledger (``history_days``), forecast
   ``horizon_days`` ahead by Holt-Winters (``inferlab.metering.forecast``) with a daily season —
   weekly once three weeks of history exist — and **backtested**: the last ``holdout_hours`` are
   held out, forecast from the rest and compared (MAPE, WAPE, sMAPE);
2. its **replica throughput**: requests per second one replica serves within the SLO, measured
   (``inferlab.capacity.calibration``), sized at ``target_utilisation`` as the planning toolkit's
   ``plan_capacity`` sizes replicas. With the model's catalogue id and hardware, the toolkit's own
   estimate for the model's mean request sizes is shown beside it, and the ratio (the calibration);
   with nothing measured, the estimate stands in, flagged as such;
3. per forecast hour, the replicas the upper forecast (``forecast + z·σ``) needs; the plan is the
   most any hour needs, and the deadline the first hour that needs more than run today;
4. its **cost**: the replica's hourly price (configured, else the planning catalogue's cheapest
   on-demand rental of its accelerator) × 730 hours a month.

With too little history to fit a daily season and hold some out, the model gets an error that
says how much there is and how much is needed — never a plan on nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from inferlab.capacity.calibration import ReplicaThroughput
from inferlab.capacity.history import HOUR, DemandHistory, ModelHistory, by_model
from inferlab.config.capacity import CapacitySettings
from inferlab.errors import InvalidRequest
from inferlab.metering.forecast import Backtest, backtest, fit

HOURS_PER_MONTH = 730
ESTIMATED = "planning estimate (not measured)"
DAY, WEEK = 24, 168


class NotEnoughHistory(InvalidRequest):
    """A model's usage history is too short to forecast and backtest."""


@dataclass(frozen=True, slots=True)
class Pool:
    """What a model runs on now: its replicas, their throughput, hardware and price."""

    replicas: int
    throughput: ReplicaThroughput
    hardware: str | None
    usd_per_hour: Decimal | None
    estimated_requests_per_s: float | None = None  # the planning toolkit's, for this model's request sizes

    @property
    def calibration(self) -> float | None:
        """Measured ÷ the toolkit's estimate (how far the roofline model is from this deployment)."""
        if self.estimated_requests_per_s is None or self.throughput.source == ESTIMATED:
            return None
        return self.throughput.requests_per_s / self.estimated_requests_per_s


@dataclass(frozen=True)
class ModelPlan:
    model: str
    history_hours: int
    method: str
    season_hours: int
    backtest: Backtest
    pool: Pool
    target_utilisation: float
    peak_requests_per_s: float
    peak_at: datetime
    needed: int
    deadline: datetime | None  # the first hour that needs more replicas than run now
    monthly_change_usd: Decimal | None
    starts: datetime  # the forecast's first hour (the current one)

    @property
    def change(self) -> int:
        return self.needed - self.pool.replicas

    @property
    def recommendation(self) -> str:
        noun = "replica" if abs(self.change) == 1 else "replicas"
        what = f"× {self.pool.hardware} {noun}" if self.pool.hardware else noun
        cost = (f", cost ${abs(self.monthly_change_usd):,.0f}/month" if self.monthly_change_usd is not None
                else ", cost unknown (set capacity.models.<model>.usd_per_hour or .hardware)")
        peak = f"peak {self.peak_requests_per_s:.2f} req/s forecast {_when(self.peak_at)}"
        if self.change > 0:
            assert self.deadline is not None
            when = "now (short already this hour)" if self.deadline <= self.starts else f"before {_when(self.deadline)}"
            return f"{self.model}: add {self.change} {what} {when}{cost} ({peak})"
        if self.change < 0:
            saving = cost.replace("cost", "saves", 1)
            return f"{self.model}: remove {-self.change} {what}{saving} ({peak})"
        kept = f"× {self.pool.hardware} " if self.pool.hardware else ""
        return f"{self.model}: keep {self.pool.replicas} {kept}{'replica' if self.pool.replicas == 1 else 'replicas'} ({peak})"

    def as_json(self) -> dict[str, Any]:
        return {"object": "capacity.plan", "model": self.model, "recommendation": self.recommendation,
                "history_hours": self.history_hours, "forecast": {"method": self.method,
                                                                  "season_hours": self.season_hours},
                "backtest": {"holdout_hours": self.backtest.days, "mape": self.backtest.mape,
                             "wape": self.backtest.wape, "smape": self.backtest.smape},
                "replica_requests_per_s": self.pool.throughput.requests_per_s,
                "throughput_source": self.pool.throughput.source, "target_utilisation": self.target_utilisation,
                "estimated_requests_per_s": self.pool.estimated_requests_per_s,
                "calibration": round(self.pool.calibration, 4) if self.pool.calibration is not None else None,
                "peak_requests_per_s": round(self.peak_requests_per_s, 4), "peak_at": self.peak_at.isoformat(),
                "replicas": self.pool.replicas, "needed": self.needed, "change": self.change,
                "deadline": self.deadline.isoformat() if self.deadline else None, "hardware": self.pool.hardware,
                "usd_per_hour": str(self.pool.usd_per_hour) if self.pool.usd_per_hour is not None else None,
                "monthly_change_usd": str(self.monthly_change_usd) if self.monthly_change_usd is not None else None}


def _when(moment: datetime) -> str:
    return moment.strftime("%A %Y-%m-%d %H:%M UTC")


def minimum_hours(settings: CapacitySettings) -> int:
    return 2 * DAY + settings.holdout_hours


def plan_model(history: ModelHistory, pool: Pool, settings: CapacitySettings, now: datetime) -> ModelPlan:
    """``now``: the history ends at the start of ``now``'s hour; the forecast starts there."""
    needed_hours = minimum_hours(settings)
    if history.hours < needed_hours:
        raise NotEnoughHistory(
            f"model {history.model!r} has {history.hours} h of usage history; a capacity plan needs at least "
            f"{needed_hours} h (two days to fit a daily season, and {settings.holdout_hours} h held out to measure "
            f"the forecast's error)", param="model")
    period = WEEK if history.hours >= 3 * WEEK + settings.holdout_hours else DAY
    tested = backtest(history.requests, settings.holdout_hours, period=period)
    model = fit(history.requests, period)
    horizon = settings.horizon_days * DAY
    start = now.replace(minute=0, second=0, microsecond=0)
    capacity = pool.throughput.requests_per_s * settings.target_utilisation
    peak, peak_at, needed, deadline = 0.0, start, 0, None
    for h, expected in enumerate(model.forecast(horizon)):
        rps = (max(0.0, expected) + settings.quantile_z * model.sigma) / 3600
        hour = start + h * HOUR
        replicas = math.ceil(rps / capacity - 1e-9) if rps > 0 else 0
        if rps > peak:
            peak, peak_at = rps, hour
        needed = max(needed, replicas)
        if deadline is None and replicas > pool.replicas:
            deadline = hour
    needed = max(needed, 1)
    change = needed - pool.replicas
    monthly = (pool.usd_per_hour * change * HOURS_PER_MONTH).quantize(Decimal("0.01")) \
        if pool.usd_per_hour is not None else None
    return ModelPlan(history.model, history.hours, model.method, len(model.season), tested, pool,
                     settings.target_utilisation, peak, peak_at, needed, deadline, monthly, start)


class CapacityPlanner:
    def __init__(self, history: DemandHistory, settings: CapacitySettings,
                 pool_of: Callable[[ModelHistory], Pool]) -> None:
        self._history = history
        self._settings = settings
        self._pool_of = pool_of

    async def histories(self, now: datetime) -> Mapping[str, ModelHistory]:
        end = now.replace(minute=0, second=0, microsecond=0)
        rows = await self._history.hourly(end - timedelta(days=self._settings.history_days), end)
        return by_model(rows, end)

    async def plan(self, now: datetime, models: tuple[str, ...] | None = None) -> list[ModelPlan | InvalidRequest]:
        """One plan per model with usage (or per named model), or the error that prevents it."""
        histories = await self.histories(now)
        found: list[ModelPlan | InvalidRequest] = []
        for name in models or tuple(sorted(histories)):
            history = histories.get(name)
            if history is None:
                found.append(NotEnoughHistory(f"model {name!r} has no usage in the last "
                                              f"{self._settings.history_days} days", param="model"))
                continue
            try:
                found.append(plan_model(history, self._pool_of(history), self._settings, now))
            except InvalidRequest as exc:
                found.append(exc)
        return found
