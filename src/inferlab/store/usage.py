"""Usage events in the SQL store: ``UsageStore`` (what the shipper needs) and its SQL implementation.

``insert_batch`` is idempotent: an event already stored (same id and time, see
``store.models.UsageEventRow``) is skipped, and only the events it newly inserted are added to the
hourly and daily rollups, in the same transaction (``store/usage_sql.py``). So a batch shipped
twice — the shipper died between the commit and marking it shipped — counts once, and the rollups
always equal the sums of the raw events.

PostgreSQL keeps the events in monthly partitions, created here before the first insert of a month
(``store/partitions.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, cast

from sqlalchemy import func, select, text

from inferlab.metering.event import EventStatus, TokenSource, UsageEvent
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import UsageEventRow, UsageRollup
from inferlab.store.partitions import create_partition, month_of, next_month, partition_name
from inferlab.store.usage_rollup import Grain, RollupKey, UsageSums
from inferlab.store.usage_sql import ROLLUP_TABLES, insert_postgres, insert_sqlite


class UsageStore(Protocol):
    async def insert_batch(self, events: Sequence[UsageEvent]) -> int:
        """Store ``events`` once each (already stored ones are skipped); how many were new."""
        ...


def _millis(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def event_of(row: UsageEventRow) -> UsageEvent:
    return UsageEvent(
        id=row.id, time=row.time, tenant=row.tenant, user=row.user_id, key=row.key_id, tier=row.tier, route=row.route,
        model=row.model, model_version=row.model_version, replica=row.replica, hardware=row.hardware,
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, cached_tokens=row.cached_tokens,
        token_source=TokenSource(row.token_source), queue_ms=_millis(row.queue_ms), ttft_ms=_millis(row.ttft_ms),
        duration_ms=float(row.duration_ms), status=EventStatus(row.status), http_status=row.http_status,
        price=row.price, hardware_cost=row.hardware_cost, request_id=row.request_id,
    )


class SqlUsageStore:
    """Usage events and their rollups in SQLite or PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._months: set[datetime] = set()  # monthly partitions known to exist (PostgreSQL)

    @property
    def database(self) -> Database:
        return self._db

    @bounded
    async def insert_batch(self, events: Sequence[UsageEvent]) -> int:
        if not events:
            return 0
        if self._db.dialect == "postgresql":
            await self._ensure_months({month_of(event.time) for event in events})
            async with self._db.sessions.begin() as session:
                return await insert_postgres(session, events)
        async with self._db.sessions.begin() as session:
            return await insert_sqlite(session, events)

    @bounded
    async def prepare(self, now: datetime) -> None:
        """Create this month's and next month's partitions ahead (PostgreSQL; nothing on SQLite)."""
        if self._db.dialect == "postgresql":
            month = month_of(now)
            await self._ensure_months({month, next_month(month)})

    async def _ensure_months(self, months: Iterable[datetime]) -> None:
        missing = [month for month in months if month not in self._months]
        for month in sorted(missing):
            async with self._db.engine.begin() as connection:
                found = await connection.scalar(text("SELECT to_regclass(:name)"), {"name": partition_name(month)})
                if found is None:
                    await create_partition(connection, month)
            self._months.add(month)

    # -- reads ------------------------------------------------------------------------------------

    @bounded
    async def events(self, tenant: str | None = None) -> list[UsageEvent]:
        """The stored events (of ``tenant``), by time then id."""
        query = select(UsageEventRow).order_by(UsageEventRow.time, UsageEventRow.id)
        if tenant is not None:
            query = query.where(UsageEventRow.tenant == tenant)
        async with self._db.sessions() as session:
            return [event_of(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def count(self, tenant: str | None = None) -> int:
        query = select(func.count()).select_from(UsageEventRow)
        if tenant is not None:
            query = query.where(UsageEventRow.tenant == tenant)
        async with self._db.sessions() as session:
            return int((await session.execute(query)).scalar_one())

    @bounded
    async def rollups(self, grain: Grain, tenant: str | None = None) -> dict[RollupKey, UsageSums]:
        """The hourly or daily rollup rows (of ``tenant``)."""
        table = ROLLUP_TABLES[grain]
        query = select(table)
        if tenant is not None:
            query = query.where(table.tenant == tenant)
        async with self._db.sessions() as session:
            rows = cast("Sequence[UsageRollup]", (await session.scalars(query)).all())  # either table's rows
        return {
            RollupKey(row.tenant, row.bucket, row.tier, row.model, row.key_id, row.replica, row.status):
                UsageSums(row.requests, row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.price,
                          row.hardware_cost, row.duration_ms)
            for row in rows
        }
