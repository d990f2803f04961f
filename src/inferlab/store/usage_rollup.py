"""The store's rollup arithmetic: what the hourly and daily tables hold, as a pure function.

A rollup row sums the events of one bucket (the UTC hour or day of the event's ``time``) and one
(tenant, tier, model, key, replica, status). The store maintains its tables incrementally from the
events it newly inserted; ``rollup`` computes the same sums from any events, which is how the store
aggregates on SQLite and how tests check the tables against the raw events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from inferlab.metering.event import ZERO, UsageEvent

Grain = Literal["hour", "day"]
MILLI = Decimal("0.001")


def millis(ms: float) -> Decimal:
    """Milliseconds as stored: exact, to the microsecond (half-even)."""
    return Decimal(ms).quantize(MILLI)


def bucket_of(moment: datetime, grain: Grain) -> datetime:
    """The start of ``moment``'s UTC hour or day."""
    moment = moment.astimezone(UTC)
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True, order=True)
class RollupKey:
    tenant: str
    bucket: datetime
    tier: str
    model: str
    key_id: str  # '' when the call had no key
    replica: str  # '' when no replica answered
    status: str


@dataclass(slots=True)
class UsageSums:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    price: Decimal = ZERO
    hardware_cost: Decimal = ZERO
    duration_ms: Decimal = ZERO

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def margin(self) -> Decimal:
        return self.price - self.hardware_cost

    def add(self, event: UsageEvent) -> None:
        self.requests += 1
        self.prompt_tokens += event.prompt_tokens
        self.completion_tokens += event.completion_tokens
        self.cached_tokens += event.cached_tokens
        self.price += event.price
        self.hardware_cost += event.hardware_cost
        self.duration_ms += millis(event.duration_ms)

    def merge(self, other: UsageSums) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.price += other.price
        self.hardware_cost += other.hardware_cost
        self.duration_ms += other.duration_ms


def key_of(event: UsageEvent, grain: Grain) -> RollupKey:
    return RollupKey(event.tenant, bucket_of(event.time, grain), event.tier, event.model, event.key or "",
                     event.replica or "", event.status.value)


def rollup(events: Iterable[UsageEvent], grain: Grain) -> dict[RollupKey, UsageSums]:
    """The rollup rows of ``events`` at ``grain``."""
    rows: dict[RollupKey, UsageSums] = {}
    for event in events:
        key = key_of(event, grain)
        sums = rows.get(key)
        if sums is None:
            sums = rows[key] = UsageSums()
        sums.add(event)
    return rows
