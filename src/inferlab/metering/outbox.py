"""The local outbox: usage events made durable on this machine before they are shipped.

On the request path ``append`` encodes the event, appends it to the journal (``journal.py``: one
``os.write`` to a file opened ``O_APPEND``, into the kernel's page cache — from then on the event
survives the process being killed, ``kill -9``) and puts it in an in-process buffer (a deque; no
lock). ``append_durably`` (a successful answer's last bytes, with ``metering.acknowledge``) is then
already done: it waits only when the journal refused the write (a full disk), for the writer's
commit, bounded.

Two threads of their own (``outbox_writer.py``) do the rest. The writer takes everything buffered
and commits it to a SQLite file in WAL mode in one transaction (written to the WAL, not fsynced),
then retires the journal segments it has wholly copied. The syncer fsyncs the WAL at most every
``flush_interval_s`` (or once ``flush_max_events`` are not fsynced): from then on the events
survive a power cut too. So:

- a killed gateway loses no event: what the writer had not committed is in the journal, read back
  into the outbox at the next start (``start``);
- a power cut, or a kernel crash, loses what was written but not fsynced: at most
  ``flush_interval_s`` (+ one fsync) of events.

The shipper reads pending rows, marks them shipped once the store has them, and prunes shipped
rows after a retention; it reads through a connection of its own in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from inferlab.metering.codec import encode
from inferlab.metering.event import UsageEvent
from inferlab.metering.journal import SEGMENT_BYTES, Completed, Journal
from inferlab.metering.outbox_writer import (
    COMPLETED,
    FSYNC,
    Entry,
    NullOutboxObserver,
    OutboxObserver,
    OutboxWriter,
    connect,
)

T = TypeVar("T")
log = logging.getLogger("inferlab.metering")

SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS usage_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, "
     "payload BLOB NOT NULL, created_at REAL NOT NULL, shipped_at REAL, failed TEXT)"),
    "CREATE INDEX IF NOT EXISTS usage_outbox_pending ON usage_outbox (seq) WHERE shipped_at IS NULL AND failed IS NULL",
    "CREATE INDEX IF NOT EXISTS usage_outbox_shipped ON usage_outbox (shipped_at) WHERE shipped_at IS NOT NULL",
)
Waiter = asyncio.Future[bool]

__all__ = ["Outbox", "OutboxObserver"]


def _settle(waiters: list[Waiter], written: bool) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(written)


class Outbox:
    def __init__(self, path: Path, *, flush_interval_s: float = 0.05, flush_max_events: int = 1000,
                 max_buffered: int = 1_000_000, observer: OutboxObserver | None = None,
                 journal: bool = True, journal_segment_bytes: int = SEGMENT_BYTES) -> None:
        """``journal=False``: no journal — acknowledgements wait for the writer's commit, and a killed
        process loses what was buffered (the design before the journal; kept to compare them)."""
        self.path = Path(path).expanduser()
        self._interval = flush_interval_s
        self._flush_max = flush_max_events
        self._max_buffered = max_buffered
        self._observer = observer or NullOutboxObserver()
        self._buffer: deque[Entry] = deque()
        self._journal = Journal(self.path.with_name(self.path.name + ".journal"), segment_bytes=journal_segment_bytes)
        self._journaled = journal
        self._journaling = False
        self._wake = threading.Event()
        self._writer: OutboxWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="inferlab-outbox-reader")
        self.dropped = 0

    # -- the request path (the event loop's thread) ------------------------------------------------

    def append(self, event: UsageEvent, waiter: Waiter | None = None) -> bool:
        """Journal and buffer ``event``; False (and counted) when it could be neither buffered nor
        journaled. Never blocks."""
        return self._append(event, waiter) is not None

    def _append(self, event: UsageEvent, waiter: Waiter | None) -> bool | None:
        """None: lost; True: journaled (survives kill -9 now); False: buffered only."""
        payload = encode(event)
        journaled = self._journaling and self._journal.append(payload)
        buffer = self._buffer
        if len(buffer) >= self._max_buffered:
            self.dropped += 1
            self._observer.dropped()
            if journaled:
                self._journal.kept()  # the next start reads it back from the journal
                log.error("usage event kept in the journal only: the outbox's buffer is full", extra={
                    "event_id": event.id})
                return True
            log.error("usage event dropped: the outbox's buffer is full", extra={"event_id": event.id})
            return None
        buffer.append((event.id, payload, None if journaled else waiter))
        if journaled:
            completed = self._journal.rotate_if_due()
            if completed is not None:
                buffer.append((COMPLETED, b"", completed))
        if (waiter is not None and not journaled) or len(buffer) >= self._flush_max:
            self._wake.set()
        return journaled

    async def append_durably(self, event: UsageEvent, timeout_s: float) -> bool:
        """Keep ``event``; True once it would survive the process being killed: at once when the
        journal took it, else when the writer has committed it (waiting at most ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = loop.create_future()
        kept = self._append(event, waiter)
        if kept is None:
            return False
        if kept:
            return True
        timer = loop.call_later(timeout_s, _settle, [waiter], False)
        try:
            return await waiter
        finally:
            timer.cancel()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the file and its table, then start the writer and the syncer."""
        self._loop = asyncio.get_running_loop()
        await self._read(self._open_reader)
        await self._read(self._recover_journal)
        self._journaling = self._journaled
        self._writer = OutboxWriter(self.path, self._buffer, self._wake, self._tell, interval_s=self._interval,
                                    flush_max_events=self._flush_max, observer=self._observer,
                                    retire=self._retire)
        self._writer.start()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything buffered now is committed and fsynced (at most ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = loop.create_future()
        self._buffer.append((FSYNC, b"", waiter))
        self._wake.set()
        timer = loop.call_later(timeout_s, _settle, [waiter], False)
        try:
            return await waiter
        finally:
            timer.cancel()

    async def close(self, timeout_s: float) -> None:
        """Stop the threads once the buffer is committed and fsynced (at most ``timeout_s``)."""
        writer, self._writer = self._writer, None
        self._journaling = False
        stopped = writer is not None and await asyncio.get_running_loop().run_in_executor(None, writer.stop, timeout_s)
        if writer is not None and not stopped:
            log.error("the outbox's writer did not finish in time: the next start reads the events back from the "
                      "journal", extra={"events": len(self._buffer)})
        await self._read(self._journal.close, stopped)
        await self._read(self._close_reader)
        self._reads.shutdown(wait=False)

    def _retire(self, completed: Completed) -> None:
        """From the writer: everything queued before ``completed`` is committed."""
        if not completed.keep:
            self._journal.remove(completed.number)

    def _recover_journal(self) -> None:
        """Read what a previous process journaled back into the outbox (the store skips events it
        already has), then remove those segments; start a new one."""
        connection = self._connection()
        recovered = 0
        for segment in self._journal.leftovers():
            rows = [(event_id, payload, time.time()) for event_id, payload in Journal.read(segment)]
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany("INSERT INTO usage_outbox (event_id, payload, created_at) VALUES (?, ?, ?)", rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            segment.unlink()
            recovered += len(rows)
        if recovered:
            log.info("usage events read back from the journal", extra={"events": recovered})
        self._journal.open()

    @property
    def journal_failures(self) -> int:
        return self._journal.failures

    @property
    def write_failures(self) -> int:
        return self._writer.write_failures if self._writer is not None else 0

    def _tell(self, waiters: list[Waiter], written: bool) -> None:
        """From a thread: settle ``waiters`` on the event loop."""
        if waiters and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                self._loop.call_soon_threadsafe(_settle, waiters, written)

    # -- the shipper's side (its own connection, in a thread of its own) ---------------------------

    async def _read(self, work: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reads, work, *args)

    def _open_reader(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        reader = connect(self.path)
        for statement in SCHEMA:
            reader.execute(statement)
        self._reader = reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _connection(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("the outbox is not open")
        return self._reader

    async def pending(self, limit: int, after: int = 0) -> list[tuple[int, bytes]]:
        """The oldest events not shipped yet (past ``after``): (seq, payload)."""
        return await self._read(self._pending, limit, after)

    def _pending(self, limit: int, after: int) -> list[tuple[int, bytes]]:
        query = ("SELECT seq, payload FROM usage_outbox WHERE shipped_at IS NULL AND failed IS NULL AND seq > ? "
                 "ORDER BY seq LIMIT ?")
        return [(int(seq), bytes(payload)) for seq, payload in self._connection().execute(query, (after, limit))]

    async def mark_shipped(self, seqs: Sequence[int]) -> None:
        await self._read(self._mark, "shipped_at = ?", time.time(), seqs)

    async def mark_failed(self, seq: int, reason: str) -> None:
        """Set an event aside that the store refuses (never retried; kept for an operator)."""
        await self._read(self._mark, "failed = ?", reason[:1000], [seq])

    def _mark(self, assignment: str, value: object, seqs: Sequence[int]) -> None:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(f"UPDATE usage_outbox SET {assignment} WHERE seq = ?", [(value, s) for s in seqs])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    async def prune(self, shipped_before: float) -> int:
        """Delete events shipped before ``shipped_before`` (a ``time.time()``); how many."""
        return await self._read(self._prune, shipped_before)

    def _prune(self, shipped_before: float) -> int:
        cursor = self._connection().execute(
            "DELETE FROM usage_outbox WHERE shipped_at IS NOT NULL AND shipped_at < ?", (shipped_before,))
        return int(cursor.rowcount)

    async def counts(self) -> dict[str, int]:
        """Events pending, shipped (still kept) and set aside, in the file."""
        return await self._read(self._counts)

    def _counts(self) -> dict[str, int]:
        row = self._connection().execute(
            "SELECT count(*) FILTER (WHERE shipped_at IS NULL AND failed IS NULL), "
            "count(*) FILTER (WHERE shipped_at IS NOT NULL), count(*) FILTER (WHERE failed IS NOT NULL) "
            "FROM usage_outbox").fetchone()
        return {"pending": int(row[0]), "shipped": int(row[1]), "failed": int(row[2])}
