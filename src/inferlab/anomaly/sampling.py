"""What the detector samples each interval: the usage ledger's sums per (model, replica, tenant)
become one value per series — a metric of a model, a replica (against its peers) or a tenant.

| kind | of | value | direction |
|---|---|---|---|
| ``ttft_ms``, ``e2e_ms`` | model; replica vs peers | mean time to first token / duration | up |
| ``error_rate`` | model, tenant; replica vs peers | share of requests with status ``error`` | up |
| ``token_rate`` | model, tenant | prompt + completion tokens per second | both |
| ``cost_rate`` | model, tenant | list price per hour (USD) | up |

Latency and error rate are left out of an interval with fewer than ``min_requests`` requests (a
mean of two requests says nothing); rates count every interval, an idle one as 0 once the series
exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from inferlab.anomaly.detector import Direction, Tuning
from inferlab.anomaly.incidents import Subject


@dataclass(frozen=True, slots=True)
class WindowRow:
    """The ledger's sums over one interval for one (model, replica, tenant)."""

    model: str
    replica: str
    tenant: str
    requests: int
    errors: int
    ttft_ms_sum: float
    ttft_count: int
    e2e_ms_sum: float
    tokens: int
    price_usd: float


class UsageWindows(Protocol):
    async def window(self, start: datetime, end: datetime) -> list[WindowRow]:
        """Sums of the usage events with ``start <= time < end``."""
        ...


@dataclass(frozen=True, slots=True)
class MetricSpec:
    direction: Direction
    floor_abs: float
    floor_rel: float


METRICS: Mapping[str, MetricSpec] = {
    "ttft_ms": MetricSpec("up", 1.0, 0.05),
    "e2e_ms": MetricSpec("up", 1.0, 0.05),
    "error_rate": MetricSpec("up", 0.01, 0.0),
    "token_rate": MetricSpec("both", 0.01, 0.02),
    "cost_rate": MetricSpec("up", 1e-6, 0.02),
}
PEER_METRICS = ("ttft_ms", "e2e_ms", "error_rate")


@dataclass
class _Sums:
    requests: int = 0
    errors: int = 0
    ttft: float = 0.0
    ttft_n: int = 0
    e2e: float = 0.0
    tokens: int = 0
    price: float = 0.0

    def add(self, row: WindowRow) -> None:
        self.requests += row.requests
        self.errors += row.errors
        self.ttft += row.ttft_ms_sum
        self.ttft_n += row.ttft_count
        self.e2e += row.e2e_ms_sum
        self.tokens += row.tokens
        self.price += row.price_usd

    def values(self, seconds: float, min_requests: int, *, rates: bool = True) -> dict[str, float]:
        found = {}
        if self.requests >= min_requests:
            found["e2e_ms"] = self.e2e / self.requests
            found["error_rate"] = self.errors / self.requests
            if self.ttft_n >= min_requests:
                found["ttft_ms"] = self.ttft / self.ttft_n
        if rates:
            found["token_rate"] = self.tokens / seconds
            found["cost_rate"] = self.price * 3600 / seconds
        return found


def sample(rows: Iterable[WindowRow], seconds: float, min_requests: int) -> dict[tuple[str, Subject], float]:
    """(kind, subject) → value for the model and tenant series (peers: ``peer_values``)."""
    models: dict[str, _Sums] = {}
    tenants: dict[str, _Sums] = {}
    for row in rows:
        models.setdefault(row.model, _Sums()).add(row)
        tenants.setdefault(row.tenant, _Sums()).add(row)
    found: dict[tuple[str, Subject], float] = {}
    for name, sums in models.items():
        for kind, value in sums.values(seconds, min_requests).items():
            found[(kind, Subject("model", name, name))] = value
    for name, sums in tenants.items():
        for kind, value in sums.values(seconds, min_requests).items():
            if kind in ("error_rate", "token_rate", "cost_rate"):
                found[(kind, Subject("tenant", name))] = value
    return found


def peer_values(rows: Iterable[WindowRow], seconds: float, min_requests: int) -> dict[tuple[str, str], dict[str, float]]:
    """(model, kind) → replica → value, for the replicas with enough requests."""
    replicas: dict[tuple[str, str], _Sums] = {}
    for row in rows:
        if row.replica:
            replicas.setdefault((row.model, row.replica), _Sums()).add(row)
    found: dict[tuple[str, str], dict[str, float]] = {}
    for (model, replica), sums in replicas.items():
        for kind, value in sums.values(seconds, min_requests, rates=False).items():
            if kind in PEER_METRICS:
                found.setdefault((model, kind), {})[replica] = value
    return found


def tuning_for(kind: str, base: Tuning, *, peer: bool) -> Tuning:
    """The detector's tuning for a metric: its direction and floors; a peer series has no season."""
    spec = METRICS[kind]
    return replace(base, direction=spec.direction, floor_abs=spec.floor_abs, floor_rel=0.0 if peer else spec.floor_rel,
                   period=0 if peer else base.period)
