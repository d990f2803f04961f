"""StoreGuard: a hard bound on every store call, fail-fast while the store is down, recovery by a
background probe, and statement errors passed through untouched; ``bounded`` runs a write that
lost a race to a unique key again."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from inferlab.errors import StoreUnavailable
from inferlab.store.guard import RACE_ATTEMPTS, StoreGuard, bounded, is_outage


class Ping:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("refused")


async def hang() -> None:
    await asyncio.Event().wait()


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def test_a_hung_call_is_cut_at_the_timeout_then_calls_fail_at_once_until_a_probe_succeeds() -> None:
    ping = Ping()
    guard = StoreGuard(ping, timeout_s=0.2, retry_s=0.1)
    try:
        assert await guard.call(answer(1)) == 1
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            await guard.call(hang())
        assert 0.2 <= time.monotonic() - started < 0.4
        assert refused.value.status == 503 and refused.value.code == "store_unavailable"
        assert refused.value.headers()["Retry-After"] == "1"
        assert guard.down
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await guard.call(answer(2))  # not run at all (and not left un-awaited)
        assert time.monotonic() - started < 0.05
        await asyncio.sleep(0.35)
        assert ping.calls >= 2 and guard.down
        ping.up = True
        await asyncio.sleep(0.2)
        assert not guard.down
        assert await guard.call(answer(3)) == 3
    finally:
        await guard.close()


async def test_statement_errors_pass_through_and_do_not_open_the_guard() -> None:
    guard = StoreGuard(Ping(), timeout_s=1, retry_s=1)

    async def conflict() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        await guard.call(conflict())
    assert not guard.down
    await guard.close()


async def test_a_cancelled_caller_cancels_its_call() -> None:
    guard = StoreGuard(Ping(), timeout_s=5, retry_s=1)
    caller = asyncio.create_task(guard.call(hang()))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not guard.down
    await guard.close()


def test_what_counts_as_an_outage() -> None:
    assert is_outage(TimeoutError()) and is_outage(ConnectionResetError())
    assert is_outage(DBAPIError("connect", {}, Exception('database "x" does not exist')))  # a failed connect
    assert not is_outage(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_outage(ProgrammingError("SELECT", {}, Exception("no such table")))
    assert not is_outage(ValueError())


class _Database:
    def __init__(self) -> None:
        self.guard = StoreGuard(Ping(), timeout_s=1, retry_s=1)


class _RacyStore:
    """A store whose write a unique key refuses ``refusals`` times before it goes through."""

    def __init__(self, refusals: int) -> None:
        self._db = _Database()
        self.refusals = refusals
        self.runs = 0

    @bounded
    async def put(self, value: int) -> int:
        self.runs += 1
        if self.runs <= self.refusals:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return value


async def test_a_write_that_lost_a_race_runs_again_and_a_lasting_refusal_is_raised() -> None:
    won_on_the_third = _RacyStore(refusals=RACE_ATTEMPTS - 1)
    assert await won_on_the_third.put(7) == 7
    assert won_on_the_third.runs == RACE_ATTEMPTS
    never = _RacyStore(refusals=RACE_ATTEMPTS)
    with pytest.raises(IntegrityError):
        await never.put(7)
    assert never.runs == RACE_ATTEMPTS
    assert not never._db.guard.down  # a refused statement is no outage
    for store in (won_on_the_third, never):
        await store._db.guard.close()


async def test_a_call_that_only_took_too_long_ends_the_outage_with_one_probe() -> None:
    """A slow statement on a database that answers: 503 for that call, and the store is up again
    after one probe's round trip instead of after ``retry_s``."""
    ping = Ping()
    ping.up = True
    guard = StoreGuard(ping, timeout_s=0.1, retry_s=5.0)
    try:
        with pytest.raises(StoreUnavailable):
            await guard.call(asyncio.sleep(1.0))
        assert guard.down
        for _ in range(20):
            await asyncio.sleep(0.01)
            if not guard.down:
                break
        assert not guard.down and ping.calls == 1
        assert await guard.call(answer(4)) == 4
    finally:
        await guard.close()
