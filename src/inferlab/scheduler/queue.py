"""Waiting for a replica slot: one bounded queue per pool, in front of it (``QueueManager``).

A request that finds every replica of its pool at its limit waits here, in the order its pool's
``SchedulingPolicy`` gives. At the door (``_admit``) it is refused at once, 503 + ``Retry-After``:

- when it names a deadline the measured drain rate says it cannot start by (``DeadlineUnreachable``);
- when its class's part of the queue is full, or the queue is full and no waiter of a lower,
  sheddable class can make room (``QueueRejected``); otherwise the newest waiter of the lowest
  sheddable class below it is turned away (``QueueShed``) and it takes the place.

Each waiter owns a future that the queue resolves with a lease when the pool signals a freed slot
(``BackendPool.subscribe``), or fails with a 503: its deadline passed (``DeadlineExceeded``), the
wait passed ``max_wait_s`` (``QueueTimeout``), or nothing in the pool is routable any more
(``NoReplicaAvailable``, at once). A waiter whose task is cancelled (its client went away) leaves
the queue at once and gives back a lease it was handed meanwhile. A retry waiting for a replica
it has not tried yet does not hold up the waiters behind it that may use the free ones.
Every ``Retry-After`` comes from the measured drain rate (``drain.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from inferlab.errors import InferLabError
from inferlab.router.pool import BackendPool, Lease, NoReplicaAvailable
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.scheduler.drain import DrainRate, retry_after
from inferlab.scheduler.policies import CLASS_NAMES, make_policy
from inferlab.scheduler.protocol import (
    ColdStartTimeout,
    DeadlineExceeded,
    DeadlineUnreachable,
    QueueObserver,
    QueueRejected,
    QueueShed,
    QueueTimeout,
    SchedulingPolicy,
)


def _tiered() -> SchedulingPolicy:
    return make_policy("tiered", aging_s=10.0, horizon_s=30.0)


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """One pool's queue: its bounds, shedding, and a fresh ``SchedulingPolicy`` for its order."""

    max_depth: int = 256
    max_wait_s: float = 30.0
    scheduling: Callable[[], SchedulingPolicy] = _tiered
    class_depth: Mapping[int, int] = field(default_factory=dict)  # rank -> most waiters of that class
    sheddable: frozenset[int] = frozenset({0})  # ranks whose waiters make room for a higher class
    headroom: Mapping[int, int] = field(default_factory=dict)  # rank -> slots it leaves free for higher classes
    aging_s: float | None = 10.0  # the policy's aging bound and share, for wait estimates
    aging_share: float = 0.03


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
    expires_by_deadline: bool = False  # its timer is its deadline (else the queue's max_wait_s)
    cold: bool = False  # it joined a pool scaled to zero: it waits for the activation, not max_wait_s


class PoolQueue:
    """One pool's waiting room: admission, bounds, timers, cancellation, and serving when capacity frees."""

    def __init__(self, pool: BackendPool, policy: QueuePolicy, observer: QueueObserver) -> None:
        if policy.max_depth < 0:
            raise ValueError("max_depth must not be negative")
        self.pool = pool
        self.policy = policy
        self.order = policy.scheduling()
        self.observer = observer
        self.drain = DrainRate()
        self.depth = 0
        self.by_class: Counter[int] = Counter()
        self._arrivals: dict[int, deque[Waiter]] = {}  # per class, for shedding the newest
        self._seq = itertools.count()
        self.totals: Counter[str] = Counter()  # queued, rejected, shed, unreachable, expired, timed_out

    # -- the request path ------------------------------------------------------------------------

    async def acquire(self, request: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on a replica, waiting in the queue when every replica is at its limit."""
        pool = self.pool
        if self.depth or not self._room_for(request.priority):
            pool.ensure_routable(exclude)  # others wait first, but nothing routable is a 503 now
        else:
            lease = pool.try_acquire(request, exclude)
            if lease is not None:
                self._dispatched(request)
                return lease
        now = pool.clock()
        self._admit(request, now)
        loop = asyncio.get_running_loop()
        waiter = Waiter(request, exclude, loop.create_future(), now, next(self._seq))
        expires_in = self.policy.max_wait_s
        if pool.activator is not None and pool.cold():  # scaled to zero: wait while a replica starts
            expires_in, waiter.cold = pool.activator.timeout_s, True
        if request.deadline is not None and request.deadline - now < expires_in:
            expires_in, waiter.expires_by_deadline = request.deadline - now, True
        waiter.timer = loop.call_later(expires_in, self._expire, waiter)
        self._join(waiter)
        if pool.free_slots():  # slots kept free for higher classes: this one may be of one
            self.serve(pool)
        try:
            lease = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            waiter.timer.cancel()
            request.queued_s += pool.clock() - waiter.enqueued_at  # served, timed out, shed or abandoned
        self.observer.queue_left(pool.model, pool.clock() - waiter.enqueued_at, "dispatched")
        return lease

    def finished(self, request: RoutingRequest, prompt_tokens: int, completion_tokens: int) -> None:
        self.order.finished(request, prompt_tokens, completion_tokens)
        if request.dispatched_at is not None:
            self.drain.held(self.pool.clock() - request.dispatched_at)

    # -- admission -------------------------------------------------------------------------------

    def _room_for(self, rank: int) -> bool:
        """Whether a request of this class may take a slot now: its class leaves ``headroom`` slots
        free for the classes above it (trunk reservation), so that they rarely wait for one."""
        kept = self.policy.headroom.get(rank, 0)
        return kept <= 0 or self.pool.free_slots() > kept

    def _lowest_with_room(self) -> int:
        headroom = self.policy.headroom
        if not headroom:
            return -(2**31)
        free = self.pool.free_slots()
        blocked = [rank for rank, kept in headroom.items() if kept > 0 and free <= kept]
        return max(blocked) + 1 if blocked else -(2**31)

    def wait_estimate(self, request: RoutingRequest) -> float | None:
        """Seconds until such a request would start if it joined now; None until the drain is measured."""
        slots = self.pool.slots()
        wait = self.drain.wait_s(self.order.ahead(request), slots)
        aging_s, share = self.policy.aging_s, self.policy.aging_share
        if wait is not None and aging_s is not None and share > 0:  # once aged, it goes with the older
            older = sum(count for rank, count in self.by_class.items() if rank <= request.priority)
            aged = self.drain.wait_s(older / share, slots)
            wait = min(wait, aging_s + (aged or 0.0))
        return wait

    def _retry_after(self, request: RoutingRequest) -> float:
        return retry_after(self.wait_estimate(request), self.policy.max_wait_s / 4)

    def _admit(self, request: RoutingRequest, now: float) -> None:
        """Refuse at the door what cannot be served in time or has no room; make room by shedding."""
        model, rank = self.pool.model, request.priority
        if request.deadline is not None and request.dispatched_at is None:
            wait = self.wait_estimate(request)
            if now >= request.deadline or (wait is not None and now + wait > request.deadline):
                self._refuse("unreachable", "deadline")
                raise DeadlineUnreachable(
                    f"model {model!r} cannot start this request before its deadline"
                    + (f" (about {wait:.1f}s of waiting ahead of it)" if wait is not None else ""),
                    retry_after=retry_after(wait, self.policy.max_wait_s / 4))
        limit = self.policy.class_depth.get(rank)
        if limit is not None and self.by_class[rank] >= limit:
            self._refuse("rejected", "rejected")
            raise QueueRejected(f"model {model!r} is at capacity and the queue of its {_name(rank)} class is full",
                                retry_after=self._retry_after(request))
        if self.depth >= self.policy.max_depth:
            victim = self._victim(rank)
            if victim is None:
                self._refuse("rejected", "rejected")
                raise QueueRejected(f"model {model!r} is at capacity and its queue is full",
                                    retry_after=self._retry_after(request))
            self._shed(victim)

    def _refuse(self, total: str, outcome: str) -> None:
        self.totals[total] += 1
        self.observer.queue_left(self.pool.model, 0.0, outcome)

    def _victim(self, rank: int) -> Waiter | None:
        """The newest waiter of the lowest sheddable class below ``rank``."""
        for lower in sorted(r for r in self.policy.sheddable if r < rank and self.by_class[r]):
            arrivals = self._arrivals[lower]
            while arrivals and not arrivals[-1].queued:
                arrivals.pop()
            if arrivals:
                return arrivals[-1]
        return None

    def _shed(self, waiter: Waiter) -> None:
        self._leave(waiter)
        self.totals["shed"] += 1
        pool = self.pool
        self.observer.queue_left(pool.model, pool.clock() - waiter.enqueued_at, "shed")
        self._fail(waiter, QueueShed(
            f"model {pool.model!r} is overloaded: requests of the {_name(waiter.request.priority)} class are "
            "turned away first", retry_after=self._retry_after(waiter.request)))

    # -- joining and leaving ---------------------------------------------------------------------

    def _join(self, waiter: Waiter) -> None:
        rank = waiter.request.priority
        self.order.push(waiter)
        self.depth += 1
        self.by_class[rank] += 1
        self._arrivals.setdefault(rank, deque()).append(waiter)
        self.totals["queued"] += 1
        self.observer.queue_changed(self.pool.model, self.depth)

    def _leave(self, waiter: Waiter) -> None:
        """The waiter is out of the queue (served, cancelled, expired or shed), once."""
        if not waiter.queued:
            return
        waiter.queued = False
        self.order.remove(waiter)
        rank = waiter.request.priority
        self.depth -= 1
        self.by_class[rank] -= 1
        if not self.by_class[rank]:
            del self.by_class[rank]
            self._arrivals.pop(rank, None)
        self.observer.queue_changed(self.pool.model, self.depth)

    @staticmethod
    def _fail(waiter: Waiter, error: InferLabError) -> None:
        if not waiter.future.done():
            waiter.future.set_exception(error)

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting task was cancelled: leave at once, give back a lease handed meanwhile."""
        self._leave(waiter)
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.pool.release(future.result(), Outcome.NEUTRAL)

    def _expire(self, waiter: Waiter) -> None:
        if waiter.future.done() or not waiter.queued:
            return
        pool, request = self.pool, waiter.request
        self._leave(waiter)
        waited = pool.clock() - waiter.enqueued_at
        if waiter.expires_by_deadline:
            self.totals["expired"] += 1
            self.observer.queue_left(pool.model, waited, "deadline")
            self._fail(waiter, DeadlineExceeded(f"model {pool.model!r} could not start this request before "
                                                "its deadline", retry_after=self._retry_after(request)))
            return
        self.totals["timed_out"] += 1
        self.observer.queue_left(pool.model, waited, "timeout")
        if waiter.cold and not pool.slots():
            self._fail(waiter, ColdStartTimeout(
                f"model {pool.model!r} was scaled to zero and no replica of it was ready within {waited:.0f}s",
                retry_after=self._retry_after(request)))
            return
        self._fail(waiter, QueueTimeout(f"model {pool.model!r} stayed at capacity for {self.policy.max_wait_s:g}s",
                                        retry_after=self._retry_after(request)))

    # -- serving ---------------------------------------------------------------------------------

    def _dispatched(self, request: RoutingRequest) -> None:
        if request.dispatched_at is None:  # a retry's later attempts are not charged again
            request.dispatched_at = self.pool.clock()
            self.order.dispatched(request)

    def _hand(self, waiter: Waiter, lease: Lease) -> None:
        self._leave(waiter)
        waiter.future.set_result(lease)
        self._dispatched(waiter.request)

    def serve(self, pool: BackendPool) -> None:
        """The pool's capacity listener: hand freed slots to waiters in order; fail them at once
        when nothing is routable."""
        while (waiter := self._next(pool.clock())) is not None:
            if waiter.future.done():  # its task was cancelled and has not run ``_abandon`` yet
                self._leave(waiter)
                continue
            try:
                lease = pool.try_acquire(waiter.request, waiter.exclude)
            except NoReplicaAvailable as unavailable:
                self._leave(waiter)
                waiter.future.set_exception(unavailable)
                self.observer.queue_left(pool.model, pool.clock() - waiter.enqueued_at, "unavailable")
                continue
            if lease is None:
                if waiter.exclude:
                    self._serve_past_retries()
                return
            self._hand(waiter, lease)

    def _next(self, now: float) -> Waiter | None:
        lowest = self._lowest_with_room()
        waiter = cast("Waiter | None", self.order.peek(now, lowest))  # the policy holds only what ``_join`` gave it
        if waiter is not None and waiter.request.priority < lowest:
            return None  # a policy blind to classes (fifo, vtc): its head waits for room
        return waiter

    def _serve_past_retries(self) -> None:
        """The head is a retry waiting for one of the replicas it has not tried yet; the waiters
        behind it that may use the free replicas go first rather than wait behind it."""
        for waiter in cast("list[Waiter]", list(self.order.waiters())):
            if waiter.future.done() or not waiter.queued or not self._room_for(waiter.request.priority):
                continue
            try:
                lease = self.pool.try_acquire(waiter.request, waiter.exclude)
            except NoReplicaAvailable:
                lease = None  # it fails when it reaches the head
            if lease is not None:
                self._hand(waiter, lease)
            elif not waiter.exclude:
                break  # a waiter that may use any replica found none free: nothing is free

    def snapshot(self) -> dict[str, Any]:
        slots = self.pool.slots()
        return {
            "depth": self.depth,
            "max_depth": self.policy.max_depth,
            "max_wait_s": self.policy.max_wait_s,
            "policy": self.order.name,
            "by_class": {_name(rank): count for rank, count in sorted(self.by_class.items())},
            "drain_per_s": self.drain.per_second(slots),
            "queued_total": self.totals["queued"],
            "rejected_total": self.totals["rejected"],
            "shed_total": self.totals["shed"],
            "deadline_unreachable_total": self.totals["unreachable"],
            "deadline_expired_total": self.totals["expired"],
            "timed_out_total": self.totals["timed_out"],
            **self.order.snapshot(),
        }


def _name(rank: int) -> str:
    return CLASS_NAMES[rank] if 0 <= rank < len(CLASS_NAMES) else str(rank)


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

    def set_policy(self, model: str, policy: QueuePolicy) -> None:
        """The policy of a pool added later (hot reload); used when its queue is first made."""
        self._policies[model] = policy

    def forget(self, pool: BackendPool) -> None:
        """Drop a removed pool's queue (hot reload, once drained) and its policy."""
        self._queues.pop(pool, None)
        self._policies.pop(pool.model, None)

    async def acquire(self, pool: BackendPool, request: RoutingRequest,
                      exclude: frozenset[str] = frozenset()) -> Lease:
        return await self.queue(pool).acquire(request, exclude)

    def finished(self, pool: BackendPool, request: RoutingRequest, prompt_tokens: int,
                 completion_tokens: int) -> None:
        self.queue(pool).finished(request, prompt_tokens, completion_tokens)

    def snapshot(self, pool: BackendPool) -> dict[str, Any]:
        return self.queue(pool).snapshot()
