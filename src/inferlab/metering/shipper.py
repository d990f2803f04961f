"""The shipper: the outbox's events into the store's ``usage_events``, each once.

A background task (started and stopped by the Lifecycle). It reads the oldest pending events,
inserts them (``UsageStore.insert_batch``, idempotent: an event already stored is skipped, so a
batch re-sent after a crash between the insert and the mark counts once) and marks them shipped.
While the store is down it retries with a doubling backoff, capped; the request path never
notices (the outbox absorbs it). An event the store refuses as such (money with more decimal
places than the ledger keeps, a field too long) is found by halving the batch, set aside in the
outbox (``failed``, logged, counted) and never blocks the others. Shipped events are pruned
after ``retention_s``.

At start-up, whatever a previous process left unshipped goes first. At shutdown ``drain`` makes a
last, bounded attempt to ship everything (after the outbox's buffer was committed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from inferlab.errors import StoreUnavailable
from inferlab.metering.codec import decode
from inferlab.metering.event import UsageEvent
from inferlab.metering.outbox import Outbox
from inferlab.store.guard import is_outage
from inferlab.store.usage import UsageStore

log = logging.getLogger("inferlab.metering")
PRUNE_EVERY_S = 60.0
COUNT_EVERY_S = 5.0  # the backlog gauge's refresh


class ShipperObserver(Protocol):
    def shipped(self, events: int, new: int) -> None: ...

    def ship_failed(self) -> None: ...

    def set_aside(self) -> None: ...

    def backlog(self, pending: int) -> None: ...


class NullShipperObserver:
    def shipped(self, events: int, new: int) -> None:
        pass

    def ship_failed(self) -> None:
        pass

    def set_aside(self) -> None:
        pass

    def backlog(self, pending: int) -> None:
        pass


class BatchSink(Protocol):
    """Another destination of every shipped batch (the analytics sink): idempotent per event id."""

    async def write(self, events: Sequence[UsageEvent]) -> int: ...


def _collect(done: set[asyncio.Task[int]], total: int, failure: BaseException | None) -> tuple[int, BaseException | None]:
    for task in done:
        if task.cancelled():
            failure = failure or asyncio.CancelledError()
        elif (error := task.exception()) is not None:
            failure = failure or error
        else:
            total += task.result()
    return total, failure


class Shipper:
    def __init__(self, outbox: Outbox, store: UsageStore, *, batch_size: int = 1000, interval_s: float = 0.5,
                 retry_initial_s: float = 0.5, retry_max_s: float = 30.0, retention_s: float = 86_400.0,
                 concurrency: int = 2, prepare: Callable[[], Awaitable[None]] | None = None,
                 sinks: Sequence[BatchSink] = (),
                 observer: ShipperObserver | None = None) -> None:
        """``prepare``: run (retried like a ship) before the first batch — the store's schema check.
        ``sinks``: written after the store, before the batch is marked shipped (a failure: retried)."""
        self._outbox = outbox
        self._store = store
        self._batch = batch_size
        self._concurrency = max(1, concurrency)
        self._interval = interval_s
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._retention = retention_s
        self._prepare = prepare
        self._sinks = tuple(sinks)
        self._observer = observer or NullShipperObserver()
        self._pruned_at = 0.0
        self._counted_at = 0.0
        self.failures = 0  # consecutive failed attempts
        self.shipped_total = 0

    async def run(self) -> None:
        """Ship until cancelled."""
        delay = self._retry_initial
        while True:
            try:
                if self._prepare is not None:
                    await self._prepare()
                    self._prepare = None
                shipped = await self.ship_available()
                await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store (or the outbox) failed: back off, retry
                self.failures += 1
                self._observer.ship_failed()
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning("usage events not shipped; retrying", extra={
                        "error": type(exc).__name__, "attempts": self.failures, "retry_s": round(delay, 3)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            if self.failures:
                log.warning("usage events shipping again", extra={"after_attempts": self.failures})
            self.failures, delay = 0, self._retry_initial
            if not shipped:
                await asyncio.sleep(self._interval)

    async def ship_once(self) -> int:
        """Ship one batch of the oldest pending events; how many left the outbox."""
        rows = await self._outbox.pending(self._batch)
        if rows:
            await self._ship(rows)
        return len(rows)

    async def ship_available(self) -> int:
        """Ship everything pending now, up to ``concurrency`` batches at once (each its own
        transaction; they lock rollup rows in one order, so they wait for each other, never
        deadlock), reading the next batch while the store inserts. How many left the outbox; the
        first failure is raised once the batches in flight have ended (they are idempotent: a
        failed one is shipped again by the next call)."""
        total, after = 0, 0
        flying: set[asyncio.Task[int]] = set()
        failure: BaseException | None = None
        try:
            while failure is None:
                rows = await self._outbox.pending(self._batch, after=after)
                if not rows:
                    break
                after = rows[-1][0]
                while len(flying) >= self._concurrency and failure is None:
                    done, flying = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
                    total, failure = _collect(done, total, failure)
                if failure is None:
                    flying.add(asyncio.get_running_loop().create_task(self._ship(rows)))
                if len(rows) < self._batch:
                    break
        finally:
            if flying:
                done, _ = await asyncio.wait(flying)
                total, failure = _collect(done, total, failure)
        if failure is not None:
            raise failure
        return total

    async def _ship(self, rows: Sequence[tuple[int, bytes]]) -> int:
        events = [decode(payload) for _, payload in rows]
        await self._insert(list(zip((seq for seq, _ in rows), events, strict=True)))
        self.shipped_total += len(rows)
        return len(rows)

    async def _insert(self, batch: Sequence[tuple[int, UsageEvent]]) -> None:
        """Insert and mark ``batch``; a batch the store refuses (not an outage) is halved until
        the refused events are alone, and those are set aside."""
        try:
            new = await self._store.insert_batch([event for _, event in batch])
        except (StoreUnavailable, asyncio.CancelledError):
            raise
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(batch) == 1:
                seq, event = batch[0]
                log.error("usage event refused by the store: set aside in the outbox", extra={
                    "event_id": event.id, "error": repr(exc)[:500]})
                await self._outbox.mark_failed(seq, repr(exc))
                self._observer.set_aside()
                return
            half = len(batch) // 2
            await self._insert(batch[:half])
            await self._insert(batch[half:])
            return
        for sink in self._sinks:
            await sink.write([event for _, event in batch])
        await self._outbox.mark_shipped([seq for seq, _ in batch])
        self._observer.shipped(len(batch), new)

    async def drain(self, timeout_s: float) -> bool:
        """Ship everything pending, within ``timeout_s``: True when the outbox is empty."""
        deadline = time.monotonic() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                if self._prepare is not None:
                    await self._prepare()
                    self._prepare = None
                while await self.ship_available():
                    if time.monotonic() > deadline:
                        return False
        except Exception as exc:  # noqa: BLE001 - the last attempt failed: the outbox keeps them for next time
            log.warning("usage events left in the outbox at shutdown", extra={"error": type(exc).__name__})
            return False
        return True

    async def _housekeeping(self) -> None:
        """The backlog gauge every few seconds; shipped events pruned every minute."""
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await self._outbox.prune(now - self._retention)
        if now - self._counted_at >= COUNT_EVERY_S:
            self._counted_at = now
            self._observer.backlog((await self._outbox.counts())["pending"])
