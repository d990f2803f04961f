"""The outbox (a real SQLite file): appends never wait; a waited-for event is in the file — readable
by another connection, as after ``kill -9`` — when the wait returns; close commits what is
buffered; what was pending is there for the next process; shipped events are pruned."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inferlab.metering.codec import decode
from inferlab.metering.outbox import Outbox

from .events import usage_event


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", flush_interval_s=0.05, flush_max_events=100)
    await box.start()
    yield box
    await box.close(5.0)


def rows_on_disk(path: Path) -> list[str]:
    """What another process would read now (its own connection)."""
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute("SELECT event_id FROM usage_outbox ORDER BY seq")]
    finally:
        connection.close()


async def test_a_waited_for_event_is_in_the_file_when_the_wait_returns(outbox: Outbox) -> None:
    events = [usage_event() for _ in range(3)]
    assert outbox.append(events[0]) and outbox.append(events[1])  # no wait: written within the interval
    assert await outbox.append_durably(events[2], timeout_s=5.0)
    assert rows_on_disk(outbox.path) == [event.id for event in events]  # in order, the earlier ones too
    assert [decode(payload) for _, payload in await outbox.pending(10)] == events


async def test_appends_are_batched_and_written_within_the_interval(outbox: Outbox) -> None:
    started = time.perf_counter()
    for _ in range(50):
        outbox.append(usage_event())
    assert time.perf_counter() - started < 0.05  # nothing on the request path waits for the disk
    for _ in range(100):
        if len(rows_on_disk(outbox.path)) == 50:
            break
        await asyncio.sleep(0.01)
    assert len(rows_on_disk(outbox.path)) == 50


async def test_close_commits_everything_buffered_and_the_next_process_finds_it_pending(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path, flush_interval_s=10.0, flush_max_events=10_000)  # nothing would be written for 10 s
    await first.start()
    sent = [usage_event() for _ in range(20)]
    for event in sent:
        first.append(event)
    await first.close(5.0)
    assert rows_on_disk(path) == [event.id for event in sent]
    second = Outbox(path)
    await second.start()
    try:
        pending = await second.pending(100)
        assert [decode(payload) for _, payload in pending] == sent
        await second.mark_shipped([seq for seq, _ in pending[:15]])
        assert await second.counts() == {"pending": 5, "shipped": 15, "failed": 0}
        await second.mark_failed(pending[15][0], "ValueError('too many places')")
        assert [decode(p).id for _, p in await second.pending(100)] == [e.id for e in sent[16:]]
        assert await second.prune(time.time() + 1) == 15  # shipped ones only
        assert await second.counts() == {"pending": 4, "shipped": 0, "failed": 1}
    finally:
        await second.close(5.0)


async def test_flush_waits_for_the_commit_and_the_fsync(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", flush_interval_s=10.0, flush_max_events=10_000)
    await box.start()
    try:
        box.append(usage_event())
        assert await box.flush(5.0)
        assert len(rows_on_disk(box.path)) == 1
    finally:
        await box.close(5.0)


async def test_a_full_buffer_drops_and_counts_instead_of_growing_or_blocking(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", max_buffered=3)  # not started: nothing drains the buffer
    assert [box.append(usage_event()) for _ in range(5)] == [True, True, True, False, False]
    assert box.dropped == 2 and box.buffered == 3


async def test_a_wait_is_bounded_when_the_writer_cannot_keep_up(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")  # not started: the writer never answers
    started = time.perf_counter()
    assert not await box.append_durably(usage_event(), timeout_s=0.1)
    assert time.perf_counter() - started < 1.0
    assert box.buffered == 1  # still kept, for the writer
