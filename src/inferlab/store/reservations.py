"""Reservations in the SQL store: check-then-insert atomic per pool across gateways (PostgreSQL:
a transaction-scoped advisory lock on the pool; SQLite: its single writer)."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, text

from inferlab.resources.model import Amount
from inferlab.resources.reservations import Conflict, ConflictOf, Reservation
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import ReservationRow


def _reservation(row: ReservationRow) -> Reservation:
    return Reservation(row.tenant_id, row.pool, Amount(row.sequences, row.kv_tokens), row.start_at, row.end_at, row.id)


def _row(reservation: Reservation) -> ReservationRow:
    return ReservationRow(id=reservation.id, tenant_id=reservation.tenant, pool=reservation.pool,
                          sequences=reservation.amount.sequences, kv_tokens=reservation.amount.kv_tokens,
                          start_at=reservation.start, end_at=reservation.end)


def _overlapping(pool: str, start: datetime, end: datetime) -> Select[Any]:
    return (select(ReservationRow)
            .where(ReservationRow.pool == pool, ReservationRow.start_at < end, ReservationRow.end_at > start)
            .order_by(ReservationRow.start_at, ReservationRow.end_at, ReservationRow.id))


class SqlReservationStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def insert(self, reservation: Reservation) -> None:
        async with self._db.sessions.begin() as session:
            session.add(_row(reservation))

    @bounded
    async def insert_unless(self, reservation: Reservation, conflict_of: ConflictOf) -> Conflict | None:
        async with self._db.sessions.begin() as session:
            if self._db.dialect == "postgresql":
                key = zlib.crc32(("inferlab:reservations:" + reservation.pool).encode()) - 2**31
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            rows = (await session.scalars(_overlapping(reservation.pool, reservation.start, reservation.end))).all()
            conflict = conflict_of([_reservation(row) for row in rows])
            if conflict is None:
                session.add(_row(reservation))
            return conflict

    @bounded
    async def delete(self, reservation_id: str) -> Reservation | None:
        async with self._db.sessions.begin() as session:
            row = await session.get(ReservationRow, reservation_id)
            if row is None:
                return None
            found = _reservation(row)
            await session.execute(delete(ReservationRow).where(ReservationRow.id == reservation_id))
            return found

    @bounded
    async def overlapping(self, pool: str, start: datetime, end: datetime) -> list[Reservation]:
        async with self._db.sessions() as session:
            return [_reservation(row) for row in (await session.scalars(_overlapping(pool, start, end))).all()]
