"""One ``BackendPool`` per model: replicas, their slots, routing, and the wait queue in front.

``acquire`` hands out a ``Lease`` on one replica's slot; ``release`` returns it with the outcome
(which feeds the breaker and the latency EWMA) and serves the queue. Nothing here does I/O: health
probes and load scrapes run in background tasks (``health.py``, ``scraper.py``) that write into
the replicas, so a routing decision costs a scan over in-memory state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inferlab.errors import ModelNotFound, ServiceUnavailable
from inferlab.router.protocol import RoutingRequest, RoutingStrategy
from inferlab.router.queue import Waiter, WaitQueue
from inferlab.router.replica import Outcome, Replica
from inferlab.router.retry import RetryBudget, RetryPolicy
from inferlab.router.strategies import LeastOutstandingStrategy
from inferlab.types import InferenceBackend, RequestKind

NO_REPLICA_RETRY_AFTER_S = 2.0


class NoReplicaAvailable(ServiceUnavailable):
    """Nothing in the pool may take a request now (all unhealthy, ejected, or excluded)."""

    default_code = "no_replica_available"


class QueueRejected(ServiceUnavailable):
    default_code = "queue_full"


class QueueTimeout(ServiceUnavailable):
    default_code = "queue_timeout"


class PoolObserver(Protocol):
    """Where the pool reports what metrics want to know (``GatewayMetrics`` implements it)."""

    def queue_changed(self, model: str, depth: int) -> None: ...

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None: ...

    def replica_changed(self, model: str, replica: str, healthy: bool, breaker: str) -> None: ...

    def retried(self, model: str, reason: str) -> None: ...


class NullPoolObserver:
    def queue_changed(self, model: str, depth: int) -> None:
        pass

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None:
        pass

    def replica_changed(self, model: str, replica: str, healthy: bool, breaker: str) -> None:
        pass

    def retried(self, model: str, reason: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    max_depth: int = 256
    max_wait_s: float = 30.0


@dataclass(slots=True, eq=False)
class Lease:
    """One slot on one replica, held for the duration of one attempt."""

    replica: Replica
    started: float
    ttfb_s: float | None = None
    released: bool = False

    @property
    def backend(self) -> InferenceBackend:
        return self.replica.backend


class BackendPool:
    """The replicas of one model (or of its embeddings), routed by one strategy."""

    def __init__(
        self,
        model: str,
        replicas: Sequence[Replica | InferenceBackend],
        *,
        strategy: RoutingStrategy | None = None,
        queue: QueuePolicy | None = None,
        retry_budget: RetryBudget | None = None,
        retry: RetryPolicy | None = None,
        session_header: str = "x-session-id",
        observer: PoolObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not replicas:
            raise ValueError(f"model {model!r} has no replicas")
        self.model = model
        self.replicas = tuple(r if isinstance(r, Replica) else Replica(r) for r in replicas)
        self.strategy = strategy or LeastOutstandingStrategy()
        self.queue_policy = queue or QueuePolicy()
        self.queue = WaitQueue(self.queue_policy.max_depth)
        self.retry_budget = retry_budget or RetryBudget(clock=clock)
        self.retry_policy = retry or RetryPolicy()
        self.session_header = session_header
        self.observer: PoolObserver = observer or NullPoolObserver()
        self.clock = clock
        self.queued_total = 0
        self.rejected_total = 0
        self.timed_out_total = 0

    # -- choosing -------------------------------------------------------------------------------

    def _scan(self, now: float, exclude: frozenset[str]) -> tuple[list[Replica], bool]:
        """(replicas free to take a request, whether any replica is routable at all)."""
        free: list[Replica] = []
        routable = False
        for replica in self.replicas:
            if exclude and replica.name in exclude:
                continue
            if not replica.routable(now):
                continue
            routable = True
            if replica.in_flight < replica.limit:
                free.append(replica)
        return free, routable

    def _dispatch(self, free: list[Replica], request: RoutingRequest, now: float) -> Lease:
        chosen = free[0] if len(free) == 1 else self.strategy.choose(free, request)
        assert isinstance(chosen, Replica)
        self.strategy.routed(chosen, request)
        request.served_by.append(chosen.name)
        chosen.dispatched()
        return Lease(chosen, now)

    def _unavailable(self, now: float) -> NoReplicaAvailable:
        waits = [r.breaker.retry_in(now) for r in self.replicas if r.breaker.retry_in(now) > 0]
        retry_after = min(waits) if waits else NO_REPLICA_RETRY_AFTER_S
        return NoReplicaAvailable(
            f"no replica of model {self.model!r} is available right now", retry_after=max(1.0, retry_after)
        )

    def try_acquire(self, request: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Lease | None:
        """A lease at once, or None when every routable replica is full (or others wait first).

        Raises ``NoReplicaAvailable`` when no replica (outside ``exclude``) is routable at all.
        """
        now = self.clock()
        free, routable = self._scan(now, exclude)
        if not routable:
            raise self._unavailable(now)
        if free and not len(self.queue):
            return self._dispatch(free, request, now)
        return None

    async def acquire(self, request: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on a replica, waiting in the queue when every replica is at its limit."""
        lease = self.try_acquire(request, exclude)
        if lease is not None:
            return lease
        policy = self.queue_policy
        if self.queue.full():
            self.rejected_total += 1
            self.observer.queue_left(self.model, 0.0, "rejected")
            raise QueueRejected(
                f"model {self.model!r} is at capacity and its queue is full", retry_after=max(1.0, policy.max_wait_s / 4)
            )
        loop = asyncio.get_running_loop()
        waiter = Waiter(request, exclude, loop.create_future(), self.clock())
        waiter.timer = loop.call_later(policy.max_wait_s, self._expire, waiter)
        self.queue.push(waiter)
        self.queued_total += 1
        self.observer.queue_changed(self.model, len(self.queue))
        try:
            lease = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            waiter.timer.cancel()
        self.observer.queue_left(self.model, self.clock() - waiter.enqueued_at, "dispatched")
        return lease  # type: ignore[no-any-return]

    def _abandon(self, waiter: Waiter) -> None:
        """The waiting task was cancelled: give back a lease it may have been handed meanwhile."""
        self.queue.remove(waiter)
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.release(future.result(), Outcome.NEUTRAL)
        self.observer.queue_changed(self.model, len(self.queue))

    def _expire(self, waiter: Waiter) -> None:
        if waiter.future.done():
            return
        self.queue.remove(waiter)
        self.timed_out_total += 1
        self.observer.queue_changed(self.model, len(self.queue))
        self.observer.queue_left(self.model, self.clock() - waiter.enqueued_at, "timeout")
        waiter.future.set_exception(QueueTimeout(
            f"model {self.model!r} stayed at capacity for {self.queue_policy.max_wait_s:g}s",
            retry_after=max(1.0, self.queue_policy.max_wait_s / 4),
        ))

    def serve_queue(self) -> None:
        """Hand freed capacity to waiters in order; fail them at once when nothing is routable."""
        queue = self.queue
        changed = False
        while (waiter := queue.peek()) is not None:
            now = self.clock()
            free, routable = self._scan(now, waiter.exclude)
            if not routable:
                queue.pop()
                waiter.future.set_exception(self._unavailable(now))
                self.observer.queue_left(self.model, now - waiter.enqueued_at, "unavailable")
            elif free:
                queue.pop()
                waiter.future.set_result(self._dispatch(free, waiter.request, now))
            else:
                if waiter.exclude:
                    changed = self._serve_past_retries() or changed
                break
            changed = True
        if changed:
            self.observer.queue_changed(self.model, len(queue))

    def _serve_past_retries(self) -> bool:
        """The head is a retry waiting for one of the replicas it has not tried yet; the waiters
        behind it that may use the free replicas go first rather than wait behind it."""
        served = False
        for waiter in self.queue.waiters():
            now = self.clock()
            free, _ = self._scan(now, waiter.exclude)
            if free:
                self.queue.remove(waiter)
                waiter.future.set_result(self._dispatch(free, waiter.request, now))
                served = True
            elif not waiter.exclude:
                break  # a waiter that may use any replica found none free: nothing is free
        return served

    # -- outcomes --------------------------------------------------------------------------------

    def release(self, lease: Lease, outcome: Outcome) -> None:
        """Give the slot back and learn from the outcome. Idempotent."""
        if lease.released:
            return
        lease.released = True
        replica = lease.replica
        opened = replica.finished(outcome, self.clock(), lease.ttfb_s)
        if opened or outcome is not Outcome.SUCCESS:
            self.observer.replica_changed(self.model, replica.name, replica.healthy(), replica.breaker.state.value)
        if len(self.queue) or opened:
            self.serve_queue()

    # -- views -----------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        now = self.clock()
        return any(replica.routable(now) for replica in self.replicas)

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "model": self.model,
            "strategy": getattr(self.strategy, "name", type(self.strategy).__name__),
            "routing_stats": self.strategy.stats(),
            "queue": {
                "depth": len(self.queue),
                "max_depth": self.queue_policy.max_depth,
                "max_wait_s": self.queue_policy.max_wait_s,
                "queued_total": self.queued_total,
                "rejected_total": self.rejected_total,
                "timed_out_total": self.timed_out_total,
            },
            "retry_budget": self.retry_budget.snapshot(),
            "replicas": [replica.snapshot(now) for replica in self.replicas],
        }


class ModelRouter:
    """Public model name → pool; a model may have a separate pool for embeddings."""

    def __init__(self, pools: Sequence[BackendPool], embedding_pools: Sequence[BackendPool] = ()) -> None:
        self.pools = {pool.model: pool for pool in pools}
        self.embedding_pools = {pool.model: pool for pool in embedding_pools}

    def pool(self, model: str, kind: RequestKind = RequestKind.CHAT) -> BackendPool:
        pool = self.pools.get(model)
        if pool is None:
            raise ModelNotFound(f"The model '{model}' does not exist", param="model")
        if kind is RequestKind.EMBEDDING:
            return self.embedding_pools.get(model, pool)
        return pool

    def all_pools(self) -> list[tuple[str, BackendPool]]:
        """Every pool with its role ("generate" or "embeddings")."""
        return [("generate", p) for p in self.pools.values()] + [("embeddings", p) for p in self.embedding_pools.values()]

    def is_ready(self, model: str) -> bool:
        embedding = self.embedding_pools.get(model)
        return self.pools[model].is_ready() and (embedding is None or embedding.is_ready())

    def names(self) -> list[str]:
        return list(self.pools)
