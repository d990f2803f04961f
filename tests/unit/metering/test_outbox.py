"""The outbox (a real SQLite file and its journal): appends never wait; an appended event survives
``kill -9`` of the process at once (the journal), and the next start reads it back; a journal that
refuses writes (a full disk) makes a waited-for event wait for the SQLite commit instead; copied
journal segments are retired; close commits what is buffered; what was pending is there for the
next process; shipped events are pruned."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
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


KILLED = textwrap.dedent("""
    import asyncio, os, sys
    from inferlab.metering.outbox import Outbox
    sys.path.insert(0, sys.argv[2])
    from events import usage_event

    async def main() -> None:
        box = Outbox(sys.argv[1], flush_interval_s=30.0, flush_max_events=100_000)  # the writer would wait 30 s
        await box.start()
        for number in range(50):
            event = usage_event(event_id=f"killed-{number:03d}")
            if number % 10 == 9:
                assert await box.append_durably(event, timeout_s=0.001)  # no wait for the writer
            else:
                assert box.append(event)
        os.kill(os.getpid(), 9)

    asyncio.run(main())
""")


async def test_every_appended_event_survives_kill_9_and_is_read_back_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", KILLED, str(path), str(Path(__file__).parent)], check=False, env=env,
        capture_output=True, timeout=60)
    assert killed.returncode == -9, killed.stderr.decode()
    assert rows_on_disk(path) == []  # the writer never committed: everything is in the journal only
    second = Outbox(path)
    await second.start()
    try:
        pending = [decode(payload).id for _, payload in await second.pending(100)]
        assert pending == [f"killed-{number:03d}" for number in range(50)]
        assert list((tmp_path / "outbox.db.journal").iterdir()) != []  # the new process's own segment
    finally:
        await second.close(5.0)
    assert list((tmp_path / "outbox.db.journal").iterdir()) == []  # all copied: nothing left to read back


async def test_a_journal_that_refuses_writes_makes_the_wait_for_the_commit(outbox: Outbox) -> None:
    full = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, as on a full disk
    try:
        os.dup2(full, outbox._journal._fd)  # type: ignore[arg-type]
        event = usage_event()
        assert await outbox.append_durably(event, timeout_s=5.0)
        assert rows_on_disk(outbox.path) == [event.id]  # it waited until the writer committed it
        assert outbox.journal_failures == 1
    finally:
        os.close(full)


async def test_segments_are_retired_once_the_writer_copied_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db", flush_interval_s=0.01, flush_max_events=10, journal_segment_bytes=2000)
    await box.start()
    journal = tmp_path / "outbox.db.journal"
    try:
        for _ in range(40):  # several segments' worth
            box.append(usage_event())
        assert await box.flush(5.0)
        box.append(usage_event())  # rotates again: the marker after everything committed
        assert await box.flush(5.0)
        assert len(list(journal.iterdir())) == 1  # only the segment being written
        assert len(rows_on_disk(box.path)) == 41
    finally:
        await box.close(5.0)
    assert list(journal.iterdir()) == []


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
