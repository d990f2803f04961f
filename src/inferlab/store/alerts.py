"""``SqlAlertLedger``: budget alerts claimed and sent, once per key across every gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import BudgetAlertRow


class SqlAlertLedger:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def claim(self, key: str, tenant: str, period: str, *, lease_s: float) -> bool:
        now = datetime.now(UTC)
        try:
            async with self._db.sessions.begin() as session:
                session.add(BudgetAlertRow(key=key, tenant=tenant, period=period, state="pending", claimed_at=now))
            return True
        except IntegrityError:
            pass
        async with self._db.sessions.begin() as session:  # take over a claim whose sender died
            taken = await session.execute(
                update(BudgetAlertRow)
                .where(BudgetAlertRow.key == key, BudgetAlertRow.state == "pending",
                       BudgetAlertRow.claimed_at < now - timedelta(seconds=lease_s))
                .values(claimed_at=now))
            return bool(getattr(taken, "rowcount", 0) == 1)

    @bounded
    async def mark_sent(self, key: str) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(update(BudgetAlertRow).where(BudgetAlertRow.key == key)
                                  .values(state="sent", sent_at=datetime.now(UTC)))

    @bounded
    async def release(self, key: str) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(delete(BudgetAlertRow).where(BudgetAlertRow.key == key,
                                                               BudgetAlertRow.state == "pending"))

    @bounded
    async def sent(self) -> list[str]:
        from sqlalchemy import select

        async with self._db.sessions() as session:
            rows = await session.scalars(select(BudgetAlertRow.key).where(BudgetAlertRow.state == "sent")
                                         .order_by(BudgetAlertRow.key))
            return list(rows)
