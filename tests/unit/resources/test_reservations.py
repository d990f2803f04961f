"""Time-boxed guarantees: conflicts against capacity, the terms in force at an instant, boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inferlab.errors import InvalidRequest
from inferlab.resources import (
    Amount,
    Grant,
    MemoryAllocator,
    MemoryReservationStore,
    PoolCapacity,
    PoolConfig,
    Reservation,
    ReservationBook,
    ReservationConflict,
    TenantShare,
)

DAY = datetime(2026, 12, 1, tzinfo=UTC)
CONFIG = PoolConfig(PoolCapacity(16, 16_000), {"base": TenantShare(Amount(4, 4000), Amount(6, 6000))},
                    TenantShare(limit=Amount(2, 2000)))


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def reserve(tenant: str, sequences: int, start: float, end: float, kv: int | None = None) -> Reservation:
    return Reservation(tenant, "p", Amount(sequences, sequences * 1000 if kv is None else kv), at(start), at(end))


@pytest.fixture
def book() -> ReservationBook:
    return ReservationBook(MemoryReservationStore())


async def test_reservations_that_fit_are_booked(book: ReservationBook) -> None:
    await book.add(reserve("x", 8, 9, 17), CONFIG)  # "tenant X gets 8 sequences from 09:00 to 17:00 UTC"
    await book.add(reserve("y", 4, 12, 20), CONFIG)  # 4 base + 8 + 4 = 16: exactly the capacity
    assert [r.tenant for r in await book.active("p", at(13))] == ["x", "y"]


async def test_a_conflict_names_the_instant_the_excess_and_the_reservations_in_the_way(book: ReservationBook) -> None:
    x = await book.add(reserve("x", 8, 9, 17), CONFIG)
    y = await book.add(reserve("y", 2, 14, 18), CONFIG)
    with pytest.raises(ReservationConflict) as caught:
        await book.add(reserve("z", 3, 8, 16), CONFIG)
    conflict = caught.value.conflict
    # 4 base + 3 = 7 fits at 08:00; with x from 09:00, 15 fits; with y from 14:00, 17 does not
    assert (conflict.at, conflict.excess, conflict.reservations) == (at(14), Amount(1, 1000), (x, y))
    assert conflict.peak_excess == Amount(1, 1000) and conflict.capacity == Amount(16, 16_000)
    assert caught.value.status == 400 and caught.value.code == "reservation_conflict"
    assert "2026-12-01T14:00:00+00:00" in caught.value.message and "1 sequences / 1000 KV tokens" in caught.value.message
    assert [r.tenant for r in await book.active("p", at(15))] == ["x", "y"]  # nothing booked


async def test_the_first_conflicting_instant_and_the_worst_one_are_both_reported(book: ReservationBook) -> None:
    await book.add(reserve("x", 9, 9, 10), CONFIG)
    await book.add(reserve("y", 12, 11, 12), CONFIG)
    with pytest.raises(ReservationConflict) as caught:
        await book.add(reserve("z", 4, 8, 13), CONFIG)
    conflict = caught.value.conflict
    assert (conflict.at, conflict.excess, conflict.peak_excess) == (at(9), Amount(1, 1000), Amount(4, 4000))
    assert [r.tenant for r in conflict.reservations] == ["x"]


async def test_intervals_are_half_open(book: ReservationBook) -> None:
    await book.add(reserve("x", 12, 9, 17), CONFIG)
    await book.add(reserve("y", 12, 17, 20), CONFIG)  # starts as x ends: no overlap
    assert [r.tenant for r in await book.active("p", at(17))] == ["y"]


async def test_other_pools_do_not_conflict(book: ReservationBook) -> None:
    await book.add(reserve("x", 12, 9, 17), CONFIG)
    await book.add(Reservation("x", "other", Amount(12, 0), at(9), at(17)), CONFIG)


async def test_guarantees_are_raised_while_a_reservation_is_active(book: ReservationBook) -> None:
    await book.add(reserve("base", 2, 9, 17), CONFIG)
    await book.add(reserve("x", 8, 9, 17, kv=500), CONFIG)
    assert await book.effective_share("base", "p", CONFIG, at(8)) == TenantShare(Amount(4, 4000), Amount(6, 6000))
    assert await book.effective_share("base", "p", CONFIG, at(9)) == TenantShare(Amount(6, 6000), Amount(8, 8000))
    x = await book.effective_share("x", "p", CONFIG, at(16.99))
    assert x == TenantShare(Amount(8, 500), Amount(10, 2500))  # the default share's limit, raised too
    assert await book.effective_share("x", "p", CONFIG, at(17)) == CONFIG.default_share


async def test_the_allocator_honours_a_reservation_while_it_is_active(book: ReservationBook) -> None:
    await book.add(reserve("x", 8, 9, 17), CONFIG)
    allocator = MemoryAllocator()
    await allocator.configure("p", await book.config_at("p", CONFIG, at(10)))
    flood = [await allocator.try_admit("p", "crowd", 10, f"c{i}") for i in range(8)]
    assert sum(isinstance(r, Grant) for r in flood) == 2  # the crowd's limit is 2
    others = [await allocator.try_admit("p", f"t{i}", 10, f"t{i}") for i in range(10)]
    assert sum(isinstance(r, Grant) for r in others) == 2  # 16 - 4 base - 8 x - 2 crowd
    mine = [await allocator.try_admit("p", "x", 10, f"x{i}") for i in range(8)]
    assert all(isinstance(r, Grant) for r in mine)


async def test_the_next_boundary_to_reconfigure_at(book: ReservationBook) -> None:
    await book.add(reserve("x", 2, 9, 17), CONFIG)
    await book.add(reserve("y", 2, 12, 13), CONFIG)
    assert await book.next_change("p", at(0)) == at(9)
    assert await book.next_change("p", at(9)) == at(12)
    assert await book.next_change("p", at(12.5)) == at(13)
    assert await book.next_change("p", at(13)) == at(17)
    assert await book.next_change("p", at(17)) is None


async def test_a_cancelled_reservation_frees_its_interval(book: ReservationBook) -> None:
    x = await book.add(reserve("x", 12, 9, 17), CONFIG)
    assert await book.cancel(x.id) == x and await book.cancel(x.id) is None
    await book.add(reserve("y", 12, 9, 17), CONFIG)


def test_times_carry_a_timezone_and_are_kept_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    reservation = Reservation("x", "p", Amount(1, 0), datetime(2026, 12, 1, 10, tzinfo=paris), at(12))
    assert reservation.start == at(9) and reservation.start.tzinfo is UTC
    with pytest.raises(InvalidRequest, match="timezone"):
        Reservation("x", "p", Amount(1, 0), datetime(2026, 12, 1, 9), at(12))  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidRequest, match="ends after it starts"):
        reserve("x", 1, 12, 12)
    with pytest.raises(InvalidRequest, match="reserves something"):
        reserve("x", 0, 9, 12, kv=0)
