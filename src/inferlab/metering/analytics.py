"""``UsageAnalytics``: the questions the reports, forecasts and alerts ask of the usage ledger.

One method, ``usage(query)``: sums of requests, tokens, list price and hardware cost over a range
of whole UTC days (or hours), filtered and grouped by dimensions. Implementations answer from
rollups, never from the raw events: the store's ``usage_daily`` / ``usage_hourly`` tables
(``inferlab.store.usage_analytics``, SQLite and PostgreSQL) or ClickHouse's summing tables
(``inferlab.metering.clickhouse``). The contract tests (``tests/contract/usage_analytics``) hold
every implementation to the same answers.

Tenant isolation is the caller's: a query names its tenants, and the tenant-facing routes build it
from the authenticated caller only (``tenants=(caller.tenant,)``); ``tenants=None`` (every tenant)
is for platform admins and the operator's CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol

from inferlab.store.usage_rollup import UsageSums

Dimension = Literal["day", "hour", "tenant", "tier", "model", "key", "replica", "status"]
DIMENSIONS: tuple[Dimension, ...] = ("day", "hour", "tenant", "tier", "model", "key", "replica", "status")


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Days ``[start, end)`` (UTC); a filter of ``None`` lets everything through."""

    start: date
    end: date
    group_by: tuple[Dimension, ...] = ("day",)
    tenants: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    keys: tuple[str, ...] | None = None  # '' is "no key"
    tiers: tuple[str, ...] | None = None
    replicas: tuple[str, ...] | None = None  # '' is "no replica"
    statuses: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if len(set(self.group_by)) != len(self.group_by) or not set(self.group_by) <= set(DIMENSIONS):
            raise ValueError(f"group_by: distinct dimensions among {', '.join(DIMENSIONS)}")

    @property
    def grain(self) -> Literal["hour", "day"]:
        """Which rollup answers it: hourly only when grouped by hour."""
        return "hour" if "hour" in self.group_by else "day"

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def filters(self) -> dict[str, tuple[str, ...]]:
        """Column name → the values it may take (only the filters that are set)."""
        named = {"tenant": self.tenants, "model": self.models, "key_id": self.keys, "tier": self.tiers,
                 "replica": self.replicas, "status": self.statuses}
        return {column: values for column, values in named.items() if values is not None}


COLUMN: dict[Dimension, str] = {"day": "bucket", "hour": "bucket", "tenant": "tenant", "tier": "tier",
                                "model": "model", "key": "key_id", "replica": "replica", "status": "status"}




@dataclass(frozen=True, slots=True)
class UsageRow:
    """One group: its dimension values (``day`` as ``YYYY-MM-DD``, ``hour`` as ISO 8601 UTC) and sums."""

    group: tuple[tuple[str, str], ...]
    totals: UsageSums = field(default_factory=UsageSums)

    def value(self, dimension: Dimension) -> str:
        return dict(self.group)[dimension]


def bucket_label(dimension: Dimension, bucket: datetime) -> str:
    bucket = bucket.astimezone(UTC)
    return bucket.date().isoformat() if dimension == "day" else bucket.strftime("%Y-%m-%dT%H:00:00Z")


def sort_rows(rows: list[UsageRow]) -> list[UsageRow]:
    """Rows in the order every implementation returns them: by their dimension values."""
    return sorted(rows, key=lambda row: row.group)


class UsageAnalytics(Protocol):
    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        """The sums of every group of ``query`` that has usage, sorted by the group's values."""
        ...


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]
