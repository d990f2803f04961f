"""``SqlCostLedger``: the hardware cost job's reads and its one write transaction (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inferlab.metering.cost import from_quanta
from inferlab.metering.costing import CostedInterval, CostPart
from inferlab.metering.event import UsageEvent
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import Money, UsageCostIntervalRow, UsageDailyRow, UsageEventRow, UsageHourlyRow
from inferlab.store.usage import event_of
from inferlab.store.usage_rollup import Grain, RollupKey, key_of

WINDOW = ""  # the replica name of a window's own row
KEY_COLUMNS = ("tenant", "bucket", "tier", "model", "key_id", "replica", "status")


class SqlCostLedger:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def progress(self) -> datetime | None:
        async with self._db.sessions() as session:
            found = await session.scalar(select(func.max(UsageCostIntervalRow.start))
                                         .where(UsageCostIntervalRow.replica == WINDOW))
        return found.replace(tzinfo=UTC) if isinstance(found, datetime) and found.tzinfo is None else found

    @bounded
    async def first_event(self) -> datetime | None:
        async with self._db.sessions() as session:
            row = await session.scalar(select(UsageEventRow).where(UsageEventRow.replica.is_not(None))
                                       .order_by(UsageEventRow.time).limit(1))
        return row.time if row is not None else None

    @bounded
    async def events_between(self, start: datetime, end: datetime) -> list[UsageEvent]:
        query = (select(UsageEventRow).where(UsageEventRow.replica.is_not(None), UsageEventRow.time >= start,
                                             UsageEventRow.time < end).order_by(UsageEventRow.time, UsageEventRow.id))
        async with self._db.sessions() as session:
            return [event_of(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def record(self, window: datetime, intervals: Sequence[CostedInterval], parts: Sequence[CostPart]) -> bool:
        now = datetime.now(UTC)
        try:
            async with self._db.sessions.begin() as session:
                session.add(UsageCostIntervalRow(replica=WINDOW, start=window, busy_us=0, quanta=0, requests=0,
                                                 costed_at=now))
                session.add_all(UsageCostIntervalRow(replica=i.replica, start=i.start, busy_us=i.busy_us,
                                                     quanta=i.quanta, requests=i.requests, costed_at=now)
                                for i in intervals)
                await session.flush()  # the window's row conflicts here when another gateway costed it
                if parts:
                    await self._add(session, parts)
            return True
        except IntegrityError:
            return False

    async def _add(self, session: AsyncSession, parts: Sequence[CostPart]) -> None:
        amount = bindparam("amount", type_=Money())
        events = cast(Table, UsageEventRow.__table__)
        await session.execute(
            update(events).where(events.c.id == bindparam("b_id"), events.c.time == bindparam("b_time"))
            .values(hardware_cost=events.c.hardware_cost + amount),
            [{"b_id": p.event.id, "b_time": p.event.time, "amount": from_quanta(p.quanta)} for p in parts])
        grains: tuple[tuple[Grain, Table], ...] = (("hour", cast(Table, UsageHourlyRow.__table__)),
                                                   ("day", cast(Table, UsageDailyRow.__table__)))
        for grain, table in grains:
            sums: dict[RollupKey, int] = {}
            for part in parts:
                key = key_of(part.event, grain)
                sums[key] = sums.get(key, 0) + part.quanta
            where = [table.c[column] == bindparam(f"b_{column}") for column in KEY_COLUMNS]
            await session.execute(
                update(table).where(*where).values(hardware_cost=table.c.hardware_cost + amount),
                [{"b_tenant": k.tenant, "b_bucket": k.bucket, "b_tier": k.tier, "b_model": k.model,
                  "b_key_id": k.key_id, "b_replica": k.replica, "b_status": k.status, "amount": from_quanta(q)}
                 for k, q in sorted(sums.items())])
