"""Time-boxed guarantees: "tenant X gets 8 sequences of pool Y from 09:00 to 17:00 UTC".

A :class:`Reservation` raises its tenant's guarantee (and limit, if it has one) by its amount
while it is active — over the half-open interval ``[start, end)``, timezone-aware. The
:class:`ReservationBook` refuses a reservation that would make the pool's guarantees (the
configured ones plus every reservation active at the same time) exceed its effective capacity
at any instant, naming the instant, the excess and the reservations in the way. It computes the
:class:`PoolConfig` in force at any instant (``config_at``) and the next instant that changes it
(``next_change``), so whoever schedules it reconfigures the allocator at each boundary.

Storage is a small protocol (:class:`ReservationStore`); :class:`MemoryReservationStore` keeps
them in the process. A store shared by several processes must make ``add``'s check-then-insert
atomic per pool (e.g. a row lock on the pool in one transaction); the book serialises its own
calls only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from inferlab.errors import InvalidRequest
from inferlab.resources.model import ZERO, Amount, PoolConfig, TenantShare


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(f"{name} must carry a timezone (UTC), got {value.isoformat()}", param=name)
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Reservation:
    tenant: str
    pool: str
    amount: Amount
    start: datetime
    end: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _aware(self.start, "start"))
        object.__setattr__(self, "end", _aware(self.end, "end"))
        if self.end <= self.start:
            raise InvalidRequest(f"a reservation ends after it starts: {self.start.isoformat()} .. {self.end.isoformat()}",
                                 param="end")
        if not self.amount:
            raise InvalidRequest("a reservation reserves something: sequences or KV tokens", param="amount")

    def active_at(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class Conflict:
    """Where a reservation does not fit: the first instant it would overbook the pool, by how much
    there, the most it would overbook anywhere in its interval, and the reservations active then."""

    reservation: Reservation
    at: datetime
    excess: Amount
    peak_excess: Amount
    capacity: Amount
    base_guaranteed: Amount
    reservations: tuple[Reservation, ...]

    @property
    def message(self) -> str:
        others = ", ".join(f"{r.tenant} {r.amount} [{r.start.isoformat()}, {r.end.isoformat()})"
                           for r in self.reservations) or "none"
        return (f"reserving {self.reservation.amount} of pool {self.reservation.pool!r} for {self.reservation.tenant!r}"
                f" would exceed its capacity {self.capacity} at {self.at.isoformat()} by {self.excess}"
                f" (at most {self.peak_excess} over the interval); configured guarantees {self.base_guaranteed},"
                f" reservations at that instant: {others}")


class ReservationConflict(InvalidRequest):
    default_code = "reservation_conflict"

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.message, param="amount")
        self.conflict = conflict


def find_conflict(candidate: Reservation, existing: Sequence[Reservation], config: PoolConfig) -> Conflict | None:
    """The conflict ``candidate`` would create among ``existing`` (of any pool), or None if it fits.

    The reserved total only rises where a reservation starts, so checking the candidate's start and
    every start inside its interval covers every instant of it."""
    same = [r for r in existing if r.pool == candidate.pool and r.overlaps(candidate.start, candidate.end)]
    instants = sorted({candidate.start} | {r.start for r in same if r.start > candidate.start})
    capacity, base = config.capacity.effective, config.guaranteed
    first: tuple[datetime, Amount, tuple[Reservation, ...]] | None = None
    peak = ZERO
    for at in instants:
        active = tuple(r for r in same if r.active_at(at))
        total = sum((r.amount for r in active), base + candidate.amount)
        excess = total.minus(capacity)
        if excess:
            peak = peak.at_least(excess)
            if first is None:
                first = (at, excess, active)
    if first is None:
        return None
    return Conflict(candidate, first[0], first[1], peak, capacity, base, first[2])


def with_reservations(config: PoolConfig, active: Sequence[Reservation]) -> PoolConfig:
    """The pool's terms with each active reservation added to its tenant's guarantee and limit."""
    shares = dict(config.shares)
    for reservation in active:
        share = shares.get(reservation.tenant, config.default_share)
        limit = None if share.limit is None else share.limit + reservation.amount
        shares[reservation.tenant] = TenantShare(share.guarantee + reservation.amount, limit, share.may_borrow)
    return PoolConfig(config.capacity, shares, config.default_share)


ConflictOf = Callable[[list[Reservation]], Conflict | None]


class ReservationStore(Protocol):
    async def insert(self, reservation: Reservation) -> None: ...

    async def insert_unless(self, reservation: Reservation, conflict_of: ConflictOf) -> Conflict | None:
        """Insert ``reservation`` unless ``conflict_of(the pool's reservations overlapping it)``
        finds a conflict, atomically per pool (across gateways for a shared store)."""
        ...

    async def delete(self, reservation_id: str) -> Reservation | None: ...

    async def overlapping(self, pool: str, start: datetime, end: datetime) -> list[Reservation]:
        """The pool's reservations active at some instant of [start, end)."""
        ...


class MemoryReservationStore:
    def __init__(self) -> None:
        self._reservations: dict[str, Reservation] = {}

    async def insert(self, reservation: Reservation) -> None:
        self._reservations[reservation.id] = reservation

    async def insert_unless(self, reservation: Reservation, conflict_of: ConflictOf) -> Conflict | None:
        conflict = conflict_of(await self.overlapping(reservation.pool, reservation.start, reservation.end))
        if conflict is None:
            await self.insert(reservation)
        return conflict

    async def delete(self, reservation_id: str) -> Reservation | None:
        return self._reservations.pop(reservation_id, None)

    async def overlapping(self, pool: str, start: datetime, end: datetime) -> list[Reservation]:
        found = [r for r in self._reservations.values() if r.pool == pool and r.overlaps(start, end)]
        return sorted(found, key=lambda r: (r.start, r.end, r.id))


_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
_INSTANT = timedelta(microseconds=1)  # datetimes' resolution: [at, at + 1 µs) is the instant at


class ReservationBook:
    def __init__(self, store: ReservationStore) -> None:
        self._store = store
        self._lock = asyncio.Lock()

    async def add(self, reservation: Reservation, config: PoolConfig) -> Reservation:
        """Book ``reservation`` against the pool's current ``config``, or raise ReservationConflict."""
        async with self._lock:
            conflict = await self._store.insert_unless(
                reservation, lambda existing: find_conflict(reservation, existing, config))
            if conflict is not None:
                raise ReservationConflict(conflict)
            return reservation

    async def cancel(self, reservation_id: str) -> Reservation | None:
        async with self._lock:
            return await self._store.delete(reservation_id)

    async def active(self, pool: str, at: datetime) -> list[Reservation]:
        """The pool's reservations active at ``at``."""
        at = _aware(at, "at")
        return await self._store.overlapping(pool, at, at + _INSTANT)

    async def config_at(self, pool: str, config: PoolConfig, at: datetime) -> PoolConfig:
        """The pool's terms in force at ``at``: ``config`` raised by the reservations active then."""
        return with_reservations(config, await self.active(pool, at))

    async def effective_share(self, tenant: str, pool: str, config: PoolConfig, at: datetime) -> TenantShare:
        return (await self.config_at(pool, config, at)).share_of(tenant)

    async def upcoming(self, pool: str, now: datetime | None = None) -> list[Reservation]:
        """The pool's reservations in force now or later."""
        now = _aware(now or datetime.now(UTC), "now")
        return await self._store.overlapping(pool, now, _FAR_FUTURE)

    async def next_change(self, pool: str, after: datetime) -> datetime | None:
        """The first instant after ``after`` at which a reservation of the pool starts or ends."""
        after = _aware(after, "after")
        upcoming = await self._store.overlapping(pool, after, _FAR_FUTURE)
        edges = [edge for r in upcoming for edge in (r.start, r.end) if edge > after]
        return min(edges, default=None)
