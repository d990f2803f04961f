"""Waiting for a replica slot: one bounded queue per pool, in front of it (``QueueManager``).

A request that finds every replica of its pool at its limit waits here, in the order its
``SchedulingPolicy`` gives (by default the priority hint, then arrival). Each waiter owns a future
that the queue resolves with a lease when the pool signals a freed slot (``BackendPool.subscribe``),
or fails with a 503: the queue is full (``QueueRejected``), the wait passed ``max_wait_s``
(``QueueTimeout``), or nothing in the pool is routable any more (``NoReplicaAvailable``, at once,
never at the timeout). A waiter whose task is cancelled leaves the queue and gives back a lease it
was handed meanwhile. A retry waiting for a replica it has not tried yet does not hold up the
waiters behind it that may use the free ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferlab.router.pool import BackendPool, Lease, NoReplicaAvailable
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.scheduler.policies import FifoPolicy
from inferlab.scheduler.protocol import (
    QueueObserver,
    QueueRejected,
    QueueTimeout,
    SchedulingPolicy,
    SortKey,
)


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """One pool's queue: its bounds, and a fresh ``SchedulingPolicy`` for its order."""

    max_depth: int = 256
    max_wait_s: float = 30.0
    scheduling: Callable[[], SchedulingPolicy] = FifoPolicy


class NullQueueObserver:
    def queue_changed(self, model: str, depth: int) -> None:
        pass

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None:
        pass


@dataclass(eq=False)
class Waiter:
    request: RoutingRequest
    exclude: frozenset[str]
    future: asyncio.Future[Lease]
    enqueued_at: float
    seq: int = 0
    queued: bool = True
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class WaitQueue:
    """The waiters of one pool in their policy's order. Pure bookkeeping: ``PoolQueue`` decides."""

    def __init__(self, max_depth: int, order: SchedulingPolicy) -> None:
        if max_depth < 0:
            raise ValueError("max_depth must not be negative")
        self.max_depth = max_depth
        self.order = order
        self._heap: list[tuple[SortKey, int, Waiter]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def full(self) -> bool:
        return self._live >= self.max_depth

    def push(self, waiter: Waiter) -> None:
        waiter.seq = next(self._seq)
        heapq.heappush(self._heap, (self.order.key(waiter), waiter.seq, waiter))
        self._live += 1

    def peek(self) -> Waiter | None:
        """The next live waiter (resolved or abandoned ones are dropped on the way)."""
        heap = self._heap
        while heap and not heap[0][2].queued:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop(self) -> Waiter:
        """Take the next live waiter out (call after ``peek`` returned one)."""
        self.peek()
        waiter = heapq.heappop(self._heap)[2]
        self.remove(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        """The waiter leaves the queue (served, timed out or cancelled); its heap entry goes lazily."""
        if waiter.queued:
            waiter.queued = False
            self._live -= 1

    def waiters(self) -> list[Waiter]:
        """The live waiters, first first."""
        return [entry[2] for entry in sorted(self._heap) if entry[2].queued]


class PoolQueue:
    """One pool's waiting room: bounds, timers, cancellation, and serving when capacity frees."""

    def __init__(self, pool: BackendPool, policy: QueuePolicy, observer: QueueObserver) -> None:
        self.pool = pool
        self.policy = policy
        self.waiting = WaitQueue(policy.max_depth, policy.scheduling())
        self.observer = observer
        self.queued_total = 0
        self.rejected_total = 0
        self.timed_out_total = 0

    async def acquire(self, request: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on a replica, waiting in the queue when every replica is at its limit."""
        pool, model = self.pool, self.pool.model
        if len(self.waiting):
            pool.ensure_routable(exclude)  # others wait first, but nothing routable is a 503 now
        else:
            lease = pool.try_acquire(request, exclude)
            if lease is not None:
                return lease
        policy = self.policy
        if self.waiting.full():
            self.rejected_total += 1
            self.observer.queue_left(model, 0.0, "rejected")
            raise QueueRejected(f"model {model!r} is at capacity and its queue is full",
                                retry_after=max(1.0, policy.max_wait_s / 4))
        loop = asyncio.get_running_loop()
        waiter = Waiter(request, exclude, loop.create_future(), pool.clock())
        waiter.timer = loop.call_later(policy.max_wait_s, self._expire, waiter)
        self.waiting.push(waiter)
        self.queued_total += 1
        self.observer.queue_changed(model, len(self.waiting))
        try:
            lease = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            waiter.timer.cancel()
            request.queued_s += pool.clock() - waiter.enqueued_at  # served, timed out or abandoned
        self.observer.queue_left(model, pool.clock() - waiter.enqueued_at, "dispatched")
        return lease

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting task was cancelled: give back a lease it may have been handed meanwhile."""
        self.waiting.remove(waiter)
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.pool.release(future.result(), Outcome.NEUTRAL)
        self.observer.queue_changed(self.pool.model, len(self.waiting))

    def _expire(self, waiter: Waiter) -> None:
        if waiter.future.done():
            return
        pool, max_wait_s = self.pool, self.policy.max_wait_s
        self.waiting.remove(waiter)
        self.timed_out_total += 1
        self.observer.queue_changed(pool.model, len(self.waiting))
        self.observer.queue_left(pool.model, pool.clock() - waiter.enqueued_at, "timeout")
        waiter.future.set_exception(QueueTimeout(
            f"model {pool.model!r} stayed at capacity for {max_wait_s:g}s",
            retry_after=max(1.0, max_wait_s / 4),
        ))

    def serve(self, pool: BackendPool) -> None:
        """The pool's capacity listener: hand freed slots to waiters in order; fail them at once
        when nothing is routable."""
        waiting = self.waiting
        changed = False
        while (waiter := waiting.peek()) is not None:
            if waiter.future.done():  # its task was cancelled and has not run ``_abandon`` yet
                waiting.remove(waiter)
            else:
                try:
                    lease = pool.try_acquire(waiter.request, waiter.exclude)
                except NoReplicaAvailable as unavailable:
                    waiting.pop()
                    waiter.future.set_exception(unavailable)
                    self.observer.queue_left(pool.model, pool.clock() - waiter.enqueued_at, "unavailable")
                else:
                    if lease is None:
                        if waiter.exclude:
                            changed = self._serve_past_retries() or changed
                        break
                    waiting.pop()
                    self._hand(waiter, lease)
            changed = True
        if changed:
            self.observer.queue_changed(pool.model, len(waiting))

    def _serve_past_retries(self) -> bool:
        """The head is a retry waiting for one of the replicas it has not tried yet; the waiters
        behind it that may use the free replicas go first rather than wait behind it."""
        served = False
        for waiter in self.waiting.waiters():
            if waiter.future.done():
                continue
            try:
                lease = self.pool.try_acquire(waiter.request, waiter.exclude)
            except NoReplicaAvailable:
                lease = None  # it fails when it reaches the head
            if lease is not None:
                self.waiting.remove(waiter)
                self._hand(waiter, lease)
                served = True
            elif not waiter.exclude:
                break  # a waiter that may use any replica found none free: nothing is free
        return served

    def _hand(self, waiter: Waiter, lease: Lease) -> None:
        waiter.future.set_result(lease)
        self.waiting.order.served(waiter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "depth": len(self.waiting),
            "max_depth": self.policy.max_depth,
            "max_wait_s": self.policy.max_wait_s,
            "policy": self.waiting.order.name,
            "queued_total": self.queued_total,
            "rejected_total": self.rejected_total,
            "timed_out_total": self.timed_out_total,
        }


class WaitQueues:
    """The ``QueueManager`` of one gateway process: a ``PoolQueue`` per pool, made on first use.

    ``policies`` maps a model name to its queue's policy (a model's embeddings pool gets a queue of
    its own with the same policy); other models get ``default``.
    """

    def __init__(self, policies: Mapping[str, QueuePolicy] | None = None, *,
                 default: QueuePolicy | None = None, observer: QueueObserver | None = None) -> None:
        self._policies = dict(policies or {})
        self._default = default or QueuePolicy()
        self._observer: QueueObserver = observer or NullQueueObserver()
        self._queues: dict[BackendPool, PoolQueue] = {}

    def queue(self, pool: BackendPool) -> PoolQueue:
        queue = self._queues.get(pool)
        if queue is None:
            policy = self._policies.get(pool.model, self._default)
            queue = self._queues[pool] = PoolQueue(pool, policy, self._observer)
            pool.subscribe(queue.serve)
        return queue

    async def acquire(self, pool: BackendPool, request: RoutingRequest,
                      exclude: frozenset[str] = frozenset()) -> Lease:
        return await self.queue(pool).acquire(request, exclude)

    def snapshot(self, pool: BackendPool) -> dict[str, Any]:
        return self.queue(pool).snapshot()
