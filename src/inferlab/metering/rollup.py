"""Rollups in process: events summed per (bucket, tenant, tier, model, key, replica, status).

The same keys and sums as the store's ``usage_hourly`` / ``usage_daily`` tables; used by the
in-memory analytics, the ClickHouse sink's checks and the property tests (rollup sums = raw sums).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from inferlab.metering.event import UsageEvent

Grain = Literal["hour", "day"]


@dataclass(frozen=True, slots=True)
class RollupKey:
    bucket: datetime
    tenant: str
    tier: str
    model: str
    key: str
    replica: str
    status: str


@dataclass(slots=True)
class Totals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    price: Decimal = Decimal(0)
    hardware_cost: Decimal = Decimal(0)
    duration_ms: float = 0.0

    def add_event(self, event: UsageEvent) -> None:
        self.requests += 1
        self.prompt_tokens += event.prompt_tokens
        self.completion_tokens += event.completion_tokens
        self.cached_tokens += event.cached_tokens
        self.price += event.price
        self.hardware_cost += event.hardware_cost
        self.duration_ms += event.duration_ms

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.price += other.price
        self.hardware_cost += other.hardware_cost
        self.duration_ms += other.duration_ms

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def margin(self) -> Decimal:
        return self.price - self.hardware_cost


def bucket_of(moment: datetime, grain: Grain) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if grain == "hour" else hour - timedelta(hours=hour.hour)


def rollup(events: Iterable[UsageEvent], grain: Grain) -> dict[RollupKey, Totals]:
    sums: dict[RollupKey, Totals] = {}
    for event in events:
        key = RollupKey(bucket_of(event.time, grain), event.tenant, event.tier, event.model, event.key or "",
                        event.replica or "", event.status.value)
        totals = sums.get(key)
        if totals is None:
            totals = sums[key] = Totals()
        totals.add_event(event)
    return sums
