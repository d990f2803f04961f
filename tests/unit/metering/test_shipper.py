"""The shipper against a real store (SQLite): each event stored once whatever is re-sent, an event
the store refuses set aside without blocking the others, retries with a capped backoff while the
store is down, a bounded last attempt at shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from inferlab.errors import StoreUnavailable
from inferlab.metering import UsageEvent
from inferlab.metering.outbox import Outbox
from inferlab.metering.shipper import Shipper
from inferlab.store import Database, upgrade
from inferlab.store.usage import SqlUsageStore

from .events import usage_event


@dataclass
class Rig:
    outbox: Outbox
    store: SqlUsageStore


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", timeout_s=10.0)
    await upgrade(database)
    outbox = Outbox(tmp_path / "outbox.db")
    await outbox.start()
    yield Rig(outbox, SqlUsageStore(database))
    await outbox.close(5.0)
    await database.close()


async def fill(outbox: Outbox, events: Sequence[UsageEvent]) -> None:
    for event in events:
        outbox.append(event)
    assert await outbox.flush(5.0)


async def test_ships_in_batches_and_marks_them(rig: Rig) -> None:
    sent = [usage_event(f"t{i % 3}") for i in range(25)]
    await fill(rig.outbox, sent)
    shipper = Shipper(rig.outbox, rig.store, batch_size=10)
    assert [await shipper.ship_once() for _ in range(4)] == [10, 10, 5, 0]
    assert sorted(e.id for e in await rig.store.events()) == sorted(e.id for e in sent)
    assert await rig.outbox.counts() == {"pending": 0, "shipped": 25, "failed": 0}


async def test_a_batch_stored_before_a_crash_is_not_stored_twice(rig: Rig) -> None:
    """The last process inserted a batch and died before marking it shipped."""
    sent = [usage_event() for _ in range(8)]
    await fill(rig.outbox, sent)
    assert await rig.store.insert_batch(sent[:5]) == 5
    await Shipper(rig.outbox, rig.store).ship_once()
    assert await rig.store.count() == 8
    assert (await rig.store.rollups("day")).popitem()[1].requests == 8


async def test_an_event_the_store_refuses_is_set_aside_and_the_rest_shipped(rig: Rig) -> None:
    sent = [usage_event() for _ in range(9)]
    poison = usage_event(price="0.00000000001")  # an 11th decimal place: the ledger keeps 10
    await fill(rig.outbox, [*sent[:4], poison, *sent[4:]])
    await Shipper(rig.outbox, rig.store).ship_once()
    assert sorted(e.id for e in await rig.store.events()) == sorted(e.id for e in sent)
    assert await rig.outbox.counts() == {"pending": 0, "shipped": 9, "failed": 1}


class Outage:
    """The real store behind a switch: down (``StoreUnavailable``, as the guard answers) until ``up``."""

    def __init__(self, store: SqlUsageStore) -> None:
        self.store = store
        self.up = False
        self.attempts: list[float] = []

    async def insert_batch(self, events: Sequence[UsageEvent]) -> int:
        self.attempts.append(time.monotonic())
        if not self.up:
            raise StoreUnavailable("down")
        return await self.store.insert_batch(events)


async def test_retries_with_a_capped_backoff_while_the_store_is_down(rig: Rig) -> None:
    sent = [usage_event() for _ in range(30)]
    await fill(rig.outbox, sent)
    store = Outage(rig.store)
    shipper = Shipper(rig.outbox, store, interval_s=0.01, retry_initial_s=0.02, retry_max_s=0.08)
    task = asyncio.get_running_loop().create_task(shipper.run())
    try:
        for _ in range(500):
            if len(store.attempts) >= 7:
                break
            await asyncio.sleep(0.01)
        gaps = [round(b - a, 2) for a, b in zip(store.attempts, store.attempts[1:], strict=False)]
        assert gaps[0] >= 0.02 and all(gap >= 0.08 for gap in gaps[3:6])  # doubling, then capped
        assert max(gaps[:6]) < 0.5
        store.up = True
        for _ in range(200):
            if await rig.store.count() == 30:
                break
            await asyncio.sleep(0.02)
        assert await rig.store.count() == 30 and shipper.failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_last_attempt_at_shutdown_is_bounded(rig: Rig) -> None:
    await fill(rig.outbox, [usage_event() for _ in range(5)])
    down = Outage(rig.store)
    started = time.monotonic()
    assert not await Shipper(rig.outbox, down).drain(timeout_s=0.5)
    assert time.monotonic() - started < 1.0
    assert (await rig.outbox.counts())["pending"] == 5  # kept for the next process
    assert await Shipper(rig.outbox, rig.store, batch_size=2).drain(timeout_s=5.0)
    assert await rig.store.count() == 5
