"""A monthly profit-and-loss model of one way to run an inference business.

Pure arithmetic over :class:`PathInputs`, written so that every line is one spreadsheet formula:
:mod:`workbook` writes the same model as live Excel formulas, and the tests evaluate that workbook
and compare it with :func:`run_path`. For month ``m`` (1 .. ``months``):

* users grow linearly from ``start_users`` to ``target_users`` over ``ramp_months``;
* revenue = users x price;
* server requests = users x requests per user x (1 - browser share); the browser serves the rest;
* peak requests/s = server requests x peak-to-average / seconds in a month;
* replicas needed = ceil(peak requests/s / (replica capacity x target utilisation));
* owned replicas are bought in month 1 (cash) and depreciated over ``amortisation_months``;
  energy = owned kW x PUE x hours x price x (idle share + (1 - idle share) x busy share), the busy
  share being the average load over the owned capacity; colocation = owned kW x $/kW-month;
* rented replicas = replicas needed beyond the owned ones, paid for ``rented_hours_per_month``
  (730: a reserved box up all month; fewer: rented for the peak hours only);
* CDN = users x download cost of the browser model (when the browser serves any requests);
* operating margin = revenue - (depreciation + energy + colocation + rent + CDN + other);
* cash = revenue - cash costs - purchases; break-even = the first month the cumulative cash is >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from inferlab.errors import InvalidRequest

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class PathInputs:
    """The assumptions of one path: one column of the workbook's Inputs sheet."""

    start_users: float
    target_users: float
    ramp_months: float
    price_per_user_month: float
    requests_per_user_month: float
    peak_to_average: float
    browser_share: float
    replica_requests_per_s: float  # one replica at the SLO (InferLab's capacity model)
    target_utilisation: float
    gpus_per_replica: float
    owned_replicas: float
    capex_per_replica: float
    amortisation_months: float
    power_kw_per_replica: float  # at full load
    idle_power_fraction: float  # draw of an idle replica, as a share of full load
    pue: float
    electricity_usd_per_kwh: float
    colo_usd_per_kw_month: float
    rent_usd_per_gpu_hour: float
    rented_hours_per_month: float
    cdn_usd_per_user_month: float
    other_usd_per_month: float
    months: int = 36

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise InvalidRequest(f"{f.name} must be a number >= 0, got {value!r}", param=f.name)
        for name in ("replica_requests_per_s", "target_utilisation", "ramp_months", "amortisation_months", "months"):
            if getattr(self, name) <= 0:
                raise InvalidRequest(f"{name} must be positive", param=name)
        for name in ("browser_share", "target_utilisation", "idle_power_fraction"):
            if getattr(self, name) > 1:
                raise InvalidRequest(f"{name} must be at most 1", param=name)


@dataclass(frozen=True)
class Month:
    month: int
    users: float
    revenue: float
    server_requests: float
    peak_rps: float
    replicas_needed: float
    rented_replicas: float
    depreciation: float
    energy: float
    colocation: float
    rent: float
    cdn: float
    other: float
    total_cost: float
    operating_margin: float
    cash_flow: float
    cumulative_cash: float
    cost_per_request: float  # all requests, the browser's included
    cost_per_server_request: float


@dataclass(frozen=True)
class PathResult:
    inputs: PathInputs
    months: tuple[Month, ...]
    break_even_month: int | None  # first month the cumulative cash is >= 0 (None: not within the horizon)
    upfront_usd: float

    @property
    def final(self) -> Month:
        return self.months[-1]


def users_in(p: PathInputs, m: int) -> float:
    return p.start_users + (p.target_users - p.start_users) * min(1.0, (m - 1) / p.ramp_months)


def replicas_for(p: PathInputs, users: float) -> float:
    """Replicas the peak load of ``users`` needs (whole replicas: a fraction of one is one)."""
    peak = users * p.requests_per_user_month * (1 - p.browser_share) * p.peak_to_average / SECONDS_PER_MONTH
    return float(math.ceil(round(peak / (p.replica_requests_per_s * p.target_utilisation), 9)))


def run_path(p: PathInputs) -> PathResult:
    months: list[Month] = []
    cumulative = 0.0
    upfront = p.owned_replicas * p.capex_per_replica
    owned_kw = p.owned_replicas * p.power_kw_per_replica
    for m in range(1, p.months + 1):
        users = users_in(p, m)
        revenue = users * p.price_per_user_month
        server_requests = users * p.requests_per_user_month * (1 - p.browser_share)
        peak = server_requests * p.peak_to_average / SECONDS_PER_MONTH
        needed = replicas_for(p, users)
        rented = max(0.0, needed - p.owned_replicas)
        depreciation = upfront / p.amortisation_months if m <= p.amortisation_months else 0.0
        owned_capacity = p.owned_replicas * p.replica_requests_per_s
        busy = min(1.0, peak / p.peak_to_average / owned_capacity) if owned_capacity > 0 else 0.0
        draw = p.idle_power_fraction + (1 - p.idle_power_fraction) * busy
        energy = owned_kw * p.pue * HOURS_PER_MONTH * p.electricity_usd_per_kwh * draw
        colocation = owned_kw * p.colo_usd_per_kw_month
        rent = rented * p.gpus_per_replica * p.rent_usd_per_gpu_hour * p.rented_hours_per_month
        cdn = users * p.cdn_usd_per_user_month if p.browser_share > 0 else 0.0
        total = depreciation + energy + colocation + rent + cdn + p.other_usd_per_month
        cash = revenue - (energy + colocation + rent + cdn + p.other_usd_per_month) - (upfront if m == 1 else 0.0)
        cumulative += cash
        all_requests = users * p.requests_per_user_month
        months.append(Month(
            month=m, users=users, revenue=revenue, server_requests=server_requests, peak_rps=peak,
            replicas_needed=needed, rented_replicas=rented, depreciation=depreciation, energy=energy,
            colocation=colocation, rent=rent, cdn=cdn, other=p.other_usd_per_month, total_cost=total,
            operating_margin=revenue - total, cash_flow=cash, cumulative_cash=cumulative,
            cost_per_request=total / all_requests if all_requests else 0.0,
            cost_per_server_request=total / server_requests if server_requests else 0.0,
        ))
    break_even = next((row.month for row in months if row.cumulative_cash >= 0), None)
    return PathResult(p, tuple(months), break_even, upfront)
