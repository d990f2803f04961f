"""The local outbox: usage events made durable on this machine before they are shipped.

The request path never touches the disk: ``append`` puts the event in an in-process buffer (a
deque; no lock, no I/O) and, when the caller waits for it (``append_durably``, a successful
answer's last bytes) or the buffer holds ``flush_max_events``, wakes the writer.

The writer, a thread of its own, takes everything buffered and commits it to a SQLite file in WAL
mode in one transaction (``synchronous=NORMAL``: the commit is written to the WAL, not fsynced), then
tells the waiters. From then on the events survive the process being killed (``kill -9``): the data
is in the operating system's hands. It fsyncs the WAL at most every ``flush_interval_s`` (or once
``flush_max_events`` are not fsynced): from then on they survive a power cut too. So:

- a killed gateway loses the events still in the buffer: at most ``flush_interval_s`` of them
  (writes of events nobody waits for are batched), and never the event of an answer whose end
  the client saw (that answer waited for its event, when ``metering.acknowledge`` is on);
- a power cut, or a kernel crash, also loses what was committed but not fsynced: at most
  ``flush_interval_s`` (+ one commit and fsync) of events.

The shipper reads pending rows, marks them shipped once the store has them, and prunes shipped
rows after a retention; it reads through a connection of its own in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from inferlab.metering.codec import encode
from inferlab.metering.event import UsageEvent

T = TypeVar("T")
log = logging.getLogger("inferlab.metering")

SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS usage_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, "
     "payload BLOB NOT NULL, created_at REAL NOT NULL, shipped_at REAL, failed TEXT)"),
    "CREATE INDEX IF NOT EXISTS usage_outbox_pending ON usage_outbox (seq) WHERE shipped_at IS NULL AND failed IS NULL",
    "CREATE INDEX IF NOT EXISTS usage_outbox_shipped ON usage_outbox (shipped_at) WHERE shipped_at IS NOT NULL",
)
MAX_PER_COMMIT = 10_000
Waiter = asyncio.Future[bool]


class OutboxObserver(Protocol):
    def written(self, events: int) -> None: ...

    def dropped(self) -> None: ...


class NullOutboxObserver:
    def written(self, events: int) -> None:
        pass

    def dropped(self) -> None:
        pass


def connect(path: Path, timeout_s: float = 5.0) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)  # explicit transactions
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # commits are written, not fsynced: the writer fsyncs
    connection.execute("PRAGMA journal_size_limit=67108864")
    return connection


def _settle(waiters: list[Waiter], written: bool) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(written)


class Outbox:
    def __init__(self, path: Path, *, flush_interval_s: float = 0.05, flush_max_events: int = 1000,
                 max_buffered: int = 1_000_000, observer: OutboxObserver | None = None) -> None:
        self.path = Path(path).expanduser()
        self._interval = flush_interval_s
        self._flush_max = flush_max_events
        self._max_buffered = max_buffered
        self._observer = observer or NullOutboxObserver()
        self._buffer: deque[tuple[UsageEvent, Waiter | None]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="inferlab-outbox-reader")
        self._wal_fd: int | None = None
        self.dropped = 0
        self.write_failures = 0

    # -- the request path (the event loop's thread) ------------------------------------------------

    def append(self, event: UsageEvent, waiter: Waiter | None = None) -> bool:
        """Buffer ``event``; False (and counted) when the buffer is full. Never blocks."""
        buffer = self._buffer
        if len(buffer) >= self._max_buffered:
            self.dropped += 1
            self._observer.dropped()
            log.error("usage event dropped: the outbox's buffer is full", extra={"event_id": event.id})
            return False
        buffer.append((event, waiter))
        if waiter is not None or len(buffer) >= self._flush_max:
            self._wake.set()
        return True

    async def append_durably(self, event: UsageEvent, timeout_s: float) -> bool:
        """Buffer ``event`` and wait until it is committed to the outbox (at most ``timeout_s``):
        True once it would survive the process being killed."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = loop.create_future()
        if not self.append(event, waiter):
            return False
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
        """Create the file and its table, then start the writer."""
        self._loop = asyncio.get_running_loop()
        await self._read(self._open_reader)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inferlab-outbox-writer", daemon=True)
        self._thread.start()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything buffered now is committed and fsynced (at most ``timeout_s``)."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = loop.create_future()
        self._buffer.append((_FSYNC, waiter))
        self._wake.set()
        timer = loop.call_later(timeout_s, _settle, [waiter], False)
        try:
            return await waiter
        finally:
            timer.cancel()

    async def close(self, timeout_s: float) -> None:
        """Stop the writer once the buffer is committed and fsynced (at most ``timeout_s``)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.get_running_loop().run_in_executor(None, thread.join, timeout_s)
            if thread.is_alive():
                log.error("the outbox's writer did not finish in time: usage events lost",
                          extra={"events": len(self._buffer)})
        await self._read(self._close_reader)
        self._reads.shutdown(wait=False)

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        connection = connect(self.path)
        unsynced, last_sync = 0, time.monotonic()
        try:
            while True:
                wait = self._interval if not unsynced else max(0.0, last_sync + self._interval - time.monotonic())
                self._wake.wait(wait)
                self._wake.clear()
                stopping = self._stopping
                events, waiters, fsync_now = self._take()
                if events and not self._write(connection, events, waiters):
                    time.sleep(self._interval)  # the disk refused: the events went back to the buffer
                    continue
                unsynced += len(events)
                if fsync_now or stopping or (unsynced and (
                        unsynced >= self._flush_max or time.monotonic() - last_sync >= self._interval)):
                    self._fsync()
                    unsynced, last_sync = 0, time.monotonic()
                self._tell(waiters, True)
                if stopping and not self._buffer:
                    return
        finally:
            connection.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None

    def _take(self) -> tuple[list[UsageEvent], list[Waiter], bool]:
        events: list[UsageEvent] = []
        waiters: list[Waiter] = []
        fsync_now = False
        buffer = self._buffer
        while buffer and len(events) < MAX_PER_COMMIT:
            event, waiter = buffer.popleft()
            if event is _FSYNC:
                fsync_now = True
            else:
                events.append(event)
            if waiter is not None:
                waiters.append(waiter)
        return events, waiters, fsync_now

    def _write(self, connection: sqlite3.Connection, events: list[UsageEvent], waiters: list[Waiter]) -> bool:
        now = time.time()
        rows = [(event.id, encode(event), now) for event in events]
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT INTO usage_outbox (event_id, payload, created_at) VALUES (?, ?, ?)", rows)
            connection.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            self.write_failures += 1
            log.exception("the outbox refused a write; the events stay buffered", extra={"events": len(events)})
            pending = [(event, None) for event in events] + [(_FSYNC, waiter) for waiter in waiters]
            self._buffer.extendleft(reversed(pending))
            return False
        self._observer.written(len(events))
        return True

    def _fsync(self) -> None:
        """fsync the WAL (where the commits are), reopened if SQLite replaced the file."""
        wal = str(self.path) + "-wal"
        try:
            if self._wal_fd is not None and os.fstat(self._wal_fd).st_ino != os.stat(wal).st_ino:
                os.close(self._wal_fd)
                self._wal_fd = None
            if self._wal_fd is None:
                self._wal_fd = os.open(wal, os.O_RDONLY)
            os.fsync(self._wal_fd)
        except FileNotFoundError:
            pass  # nothing was written since the last checkpoint: nothing to sync

    def _tell(self, waiters: list[Waiter], written: bool) -> None:
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


class _FsyncMarker:
    """In the buffer: "fsync once everything before me is committed" (``flush``)."""

    id = "fsync"


_FSYNC: UsageEvent = _FsyncMarker()  # type: ignore[assignment]  # a sentinel, never written
