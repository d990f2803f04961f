"""The outbox's two threads: the writer commits, the syncer fsyncs — neither waits for the other.

The writer takes everything buffered, inserts it in one transaction (WAL, ``synchronous=NORMAL``:
written to the WAL, not fsynced) and tells the waiters at once: the events now survive the process
being killed. It never fsyncs, so a slow disk never holds up an acknowledgement.

The syncer fsyncs the WAL at most every ``interval_s`` when something was committed since, sooner
when ``flush_max_events`` are not fsynced or a ``flush`` waits (its waiters are told once an fsync
that began after their commit has ended), and checkpoints the WAL into the database now and then
(SQLite's own automatic checkpoint, which fsyncs inside a commit, is off for the writer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("inferlab.metering")
MAX_PER_COMMIT = 10_000
CHECKPOINT_EVERY_S = 1.0

Tell = Callable[[list[Any], bool], None]  # (waiters, written) → told on the event loop


class OutboxObserver(Protocol):
    def written(self, events: int) -> None: ...

    def dropped(self) -> None: ...


class NullOutboxObserver:
    def written(self, events: int) -> None:
        pass

    def dropped(self) -> None:
        pass


def connect(path: Path, timeout_s: float = 5.0) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # commits are written, not fsynced: the syncer fsyncs
    connection.execute("PRAGMA journal_size_limit=67108864")
    return connection


FSYNC = "\x00fsync"  # an event id no event has: "tell my waiter once everything before me is fsynced"
COMPLETED = "\x00completed"  # "...committed, then retire this journal segment" (its tag: a ``Completed``)

Entry = tuple[str, bytes, Any]  # (event id, encoded event, a waiter / None / the marker's argument)


class OutboxWriter:
    def __init__(self, path: Path, buffer: deque[Entry], wake: threading.Event, tell: Tell, *,
                 interval_s: float, flush_max_events: int, observer: OutboxObserver,
                 retire: Callable[[Any], None] = lambda completed: None) -> None:
        self._path = path
        self._retire = retire
        self._buffer = buffer
        self._wake = wake
        self._tell = tell
        self._interval = interval_s
        self._flush_max = flush_max_events
        self._observer = observer
        self._sync_wake = threading.Event()
        self._lock = threading.Lock()
        self._sync_waiters: list[tuple[int, Any]] = []  # (commit number, waiter)
        self._committed = 0  # commits made (the writer's count)
        self._unsynced = 0  # events committed since the syncer last started an fsync
        self._stopping = False
        self._writer_done = False
        self._threads: list[threading.Thread] = []
        self.write_failures = 0

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._write_loop, name="inferlab-outbox-writer", daemon=True),
                         threading.Thread(target=self._sync_loop, name="inferlab-outbox-syncer", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Commit what is buffered, fsync, stop (a blocking call: run it in an executor)."""
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # -- the writer --------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        connection = connect(self._path)
        connection.execute("PRAGMA wal_autocheckpoint=0")  # the syncer checkpoints: commits never fsync
        try:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                stopping = self._stopping
                while self._buffer:
                    if not self._commit_some(connection):
                        time.sleep(self._interval)  # the disk refused: the events went back to the buffer
                        break
                if stopping and not self._buffer:
                    return
        finally:
            connection.close()
            self._writer_done = True
            self._sync_wake.set()

    def _commit_some(self, connection: sqlite3.Connection) -> bool:
        rows: list[tuple[str, bytes]] = []
        acks: list[Any] = []
        syncs: list[Any] = []
        completed: list[Any] = []
        buffer = self._buffer
        while buffer and len(rows) < MAX_PER_COMMIT:
            event_id, payload, tag = buffer.popleft()
            if event_id is FSYNC:
                syncs.append(tag)
            elif event_id is COMPLETED:
                completed.append(tag)
            else:
                rows.append((event_id, payload))
                if tag is not None:
                    acks.append(tag)
        if rows and not self._insert(connection, rows, acks, syncs, completed):
            return False
        self._committed += 1
        self._unsynced += len(rows)
        self._tell(acks, True)
        for segment in completed:
            self._retire(segment)
        if syncs:
            with self._lock:
                self._sync_waiters += [(self._committed, waiter) for waiter in syncs]
        if syncs or self._unsynced >= self._flush_max:
            self._sync_wake.set()
        return True

    def _insert(self, connection: sqlite3.Connection, rows: list[tuple[str, bytes]], acks: list[Any],
                syncs: list[Any], completed: list[Any]) -> bool:
        now = time.time()
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT INTO usage_outbox (event_id, payload, created_at) VALUES (?, ?, ?)",
                                   [(event_id, payload, now) for event_id, payload in rows])
            connection.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            self.write_failures += 1
            log.exception("the outbox refused a write; the events stay buffered", extra={"events": len(rows)})
            ack = iter(acks)
            again: list[Entry] = [(event_id, payload, next(ack, None)) for event_id, payload in rows]
            again += [(FSYNC, b"", waiter) for waiter in syncs] + [(COMPLETED, b"", tag) for tag in completed]
            self._buffer.extendleft(reversed(again))  # waiters ride on the first events again
            return False
        self._observer.written(len(rows))
        return True

    # -- the syncer --------------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        synced, wal_fd, checkpointed = 0, None, time.monotonic()
        checkpoints: sqlite3.Connection | None = None
        try:
            while True:
                self._sync_wake.wait(self._interval)
                self._sync_wake.clear()
                done = self._writer_done
                target = self._committed
                if target > synced:
                    self._unsynced = 0
                    wal_fd = _fsync(str(self._path) + "-wal", wal_fd)
                    synced = target
                with self._lock:
                    ready = [waiter for number, waiter in self._sync_waiters if number <= synced]
                    self._sync_waiters = [(n, w) for n, w in self._sync_waiters if n > synced]
                self._tell(ready, True)
                if time.monotonic() - checkpointed >= CHECKPOINT_EVERY_S:
                    checkpoints = checkpoints or connect(self._path)
                    with contextlib.suppress(sqlite3.Error):  # busy: the next one will do
                        checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    checkpointed = time.monotonic()
                if done and synced >= self._committed:
                    return
        finally:
            if wal_fd is not None:
                os.close(wal_fd)
            if checkpoints is not None:
                checkpoints.close()


def _fsync(wal: str, fd: int | None) -> int | None:
    """fsync the WAL (where the commits are), reopened if SQLite replaced the file; the fd kept."""
    try:
        if fd is not None and os.fstat(fd).st_ino != os.stat(wal).st_ino:
            os.close(fd)
            fd = None
        if fd is None:
            fd = os.open(wal, os.O_RDONLY)
        os.fsync(fd)
    except FileNotFoundError:
        pass  # nothing written since the last checkpoint truncated it: nothing to sync
    return fd
