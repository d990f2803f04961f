"""Reservations in the SQL store (SQLite and PostgreSQL): kept, found by overlap, and booked
atomically per pool — of concurrent bookings that together would overbook a pool, only those that
fit are stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from inferlab.resources.model import Amount, PoolCapacity, PoolConfig
from inferlab.resources.reservations import Reservation, ReservationBook, ReservationConflict
from inferlab.store import Database
from inferlab.store.reservations import SqlReservationStore

T0 = datetime(2026, 12, 3, 9, tzinfo=UTC)
POOL = PoolConfig(PoolCapacity(8, 80_000))


def booking(tenant: str, sequences: int, start_h: int = 0, end_h: int = 8) -> Reservation:
    return Reservation(tenant, "p", Amount(sequences, 0), T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h))


async def test_reservations_round_trip_and_overlap(database: Database) -> None:
    store = SqlReservationStore(database)
    book = ReservationBook(store)
    morning = await book.add(booking("a", 3, 0, 4), POOL)
    await book.add(booking("b", 2, 4, 8), POOL)
    assert [r.tenant for r in await book.active("p", T0 + timedelta(hours=1))] == ["a"]
    assert [r.tenant for r in await book.active("p", T0 + timedelta(hours=5))] == ["b"]
    found = (await store.overlapping("p", T0, T0 + timedelta(hours=8)))[0]
    assert found == morning  # timezone-aware, same id and amount
    assert await book.cancel(morning.id) == morning and await book.cancel(morning.id) is None


async def test_a_booking_that_would_overbook_is_refused_and_not_stored(database: Database) -> None:
    book = ReservationBook(SqlReservationStore(database))
    await book.add(booking("a", 6), POOL)
    with pytest.raises(ReservationConflict):
        await book.add(booking("b", 3, 2, 3), POOL)
    assert len(await book.active("p", T0 + timedelta(hours=2))) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
async def test_concurrent_bookings_from_two_gateways_never_overbook(database: Database) -> None:
    """Two gateways on one PostgreSQL: the pool's advisory lock makes check-then-insert atomic.
    (SQLite is one host's store: one gateway's book serialises its own bookings.)"""
    books = [ReservationBook(SqlReservationStore(database)) for _ in range(2)]  # each its own lock

    async def attempt(i: int) -> bool:
        try:
            await books[i % 2].add(booking(f"t{i}", 3), POOL)
        except ReservationConflict:
            return False
        return True

    admitted = await asyncio.gather(*(attempt(i) for i in range(6)))
    assert sum(admitted) == 2  # 2 × 3 ≤ 8 < 3 × 3
    assert len(await books[0].active("p", T0)) == 2
