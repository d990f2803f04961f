"""One ``BackendPool`` per model: replicas, their slots and routing. Waiting is not here.

``try_acquire`` hands out a ``Lease`` on one replica's slot at once, or None when every routable
replica is at its limit; ``release`` returns it with the outcome (which feeds the breaker and the
latency EWMA). Whoever waits for a slot (the scheduler's queue, ``inferlab.scheduler``) subscribes
to the pool's capacity signal: its listeners are called whenever a slot frees or routability
changes (a breaker opened, a probe verdict, an engine came or went), to serve or fail waiters.

Nothing here does I/O: health probes and load scrapes run in background tasks (``health.py``,
``scraper.py``) that write into the replicas, so a routing decision costs a scan over in-memory
state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inferlab.errors import ModelNotFound, ServiceUnavailable
from inferlab.router.protocol import RoutingRequest, RoutingStrategy
from inferlab.router.replica import Outcome, Replica
from inferlab.router.retry import RetryBudget, RetryPolicy
from inferlab.router.strategies import LeastOutstandingStrategy
from inferlab.router.timeouts import TimeoutModel
from inferlab.types import InferenceBackend, RequestKind

NO_REPLICA_RETRY_AFTER_S = 2.0


class NoReplicaAvailable(ServiceUnavailable):
    """Nothing in the pool may take a request now (all unhealthy, ejected, or excluded)."""

    default_code = "no_replica_available"


class PoolObserver(Protocol):
    """Where the pool reports what metrics want to know (``GatewayMetrics`` implements it)."""

    def replica_changed(self, model: str, replica: str, healthy: bool, breaker: str) -> None: ...

    def retried(self, model: str, reason: str) -> None: ...


class NullPoolObserver:
    def replica_changed(self, model: str, replica: str, healthy: bool, breaker: str) -> None:
        pass

    def retried(self, model: str, reason: str) -> None:
        pass


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


class Activator(Protocol):
    """Brings replicas back to a pool scaled to zero (the autoscaler, ``inferlab.autoscale``).

    While it answers ``activate`` with True, a pool with no routable replica is *cold*, not down:
    requests wait in its queue (at most ``timeout_s``) instead of failing at once.
    """

    timeout_s: float

    def activate(self, pool: BackendPool) -> bool:
        """A request found nothing routable: start a replica if none is on its way; True when one is."""
        ...

    def standby(self, pool: BackendPool) -> bool:
        """The pool is at zero replicas by design (ready to be woken), not broken."""
        ...


CapacityListener = Callable[["BackendPool"], None]
"""Called with the pool when a slot frees or routability changes (synchronously: keep it short)."""


class BackendPool:
    """The replicas of one model (or of its embeddings), routed by one strategy."""

    def __init__(
        self,
        model: str,
        replicas: Sequence[Replica | InferenceBackend],
        *,
        strategy: RoutingStrategy | None = None,
        retry_budget: RetryBudget | None = None,
        retry: RetryPolicy | None = None,
        timeouts: TimeoutModel | None = None,
        observer: PoolObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        listeners: Sequence[CapacityListener] = (),
        allow_empty: bool = False,
    ) -> None:
        if not replicas and not allow_empty:
            raise ValueError(f"model {model!r} has no replicas")
        self.model = model
        self.replicas = tuple(r if isinstance(r, Replica) else Replica(r) for r in replicas)
        self.strategy = strategy or LeastOutstandingStrategy()
        self.retry_budget = retry_budget or RetryBudget(clock=clock)
        self.retry_policy = retry or RetryPolicy()
        self.timeouts = timeouts or TimeoutModel()
        self.observer: PoolObserver = observer or NullPoolObserver()
        self.clock = clock
        self._listeners = list(listeners)
        self.activator: Activator | None = None  # set by the autoscaler when it may scale this pool to zero

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
        waits = [wait for r in self.replicas if (wait := r.retry_in(now)) > 0]
        retry_after = min(waits) if waits else NO_REPLICA_RETRY_AFTER_S
        return NoReplicaAvailable(
            f"no replica of model {self.model!r} is available right now", retry_after=max(1.0, retry_after)
        )

    def try_acquire(self, request: RoutingRequest, exclude: frozenset[str] = frozenset()) -> Lease | None:
        """A lease at once, or None when every routable replica (outside ``exclude``) is full.

        Raises ``NoReplicaAvailable`` when no replica (outside ``exclude``) is routable at all,
        unless the pool is cold (its activator is bringing one): then None, the request waits.
        """
        now = self.clock()
        free, routable = self._scan(now, exclude)
        if not routable:
            if self.cold():
                return None
            raise self._unavailable(now)
        return self._dispatch(free, request, now) if free else None

    def ensure_routable(self, exclude: frozenset[str] = frozenset()) -> None:
        """Raise ``NoReplicaAvailable`` when no replica (outside ``exclude``) is routable and the
        pool is not cold; take nothing."""
        now = self.clock()
        routable = any(replica.routable(now) for replica in self.replicas if replica.name not in exclude)
        if not routable and not self.cold():
            raise self._unavailable(now)

    def cold(self) -> bool:
        """Nothing routable, and the activator is bringing a replica: wait rather than fail."""
        if self.activator is None:
            return False
        now = self.clock()
        if any(replica.routable(now) for replica in self.replicas):
            return False
        return self.activator.activate(self)

    # -- membership (autoscaling) ----------------------------------------------------------------

    def add_replica(self, replica: Replica) -> None:
        """Serve one more replica (ready); waiters are served at once."""
        self.replicas = (*self.replicas, replica)
        self.capacity_changed()

    def remove_replica(self, name: str) -> Replica | None:
        """Stop routing to a replica (cordoned and drained first, by whoever removes it)."""
        found = next((r for r in self.replicas if r.name == name), None)
        if found is not None:
            self.replicas = tuple(r for r in self.replicas if r is not found)
            self.strategy.forget(name)
            self.capacity_changed()
        return found

    def slots(self) -> int:
        """Requests the routable replicas take at once (what a saturated pool frees in turn)."""
        now = self.clock()
        return sum(replica.limit for replica in self.replicas if replica.routable(now))

    def free_slots(self) -> int:
        """Slots of the routable replicas not in use now."""
        now = self.clock()
        return sum(max(0, r.limit - r.in_flight) for r in self.replicas if r.routable(now))

    # -- the capacity signal ---------------------------------------------------------------------

    def subscribe(self, listener: CapacityListener) -> None:
        """Call ``listener(pool)`` from now on whenever a slot frees or routability changes."""
        self._listeners.append(listener)

    def capacity_changed(self) -> None:
        """A slot freed or routability changed: tell the listeners (they serve or fail waiters).

        ``release`` calls it; so do the health monitor (probe verdicts, engines coming and going)
        and anything else that changes which replicas may take a request.
        """
        for listener in self._listeners:
            listener(self)

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
        self.capacity_changed()

    # -- views -----------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """A routable replica, or none by design (scaled to zero, woken by the next request)."""
        now = self.clock()
        if any(replica.routable(now) for replica in self.replicas):
            return True
        return self.activator is not None and self.activator.standby(self)

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "model": self.model,
            "strategy": getattr(self.strategy, "name", type(self.strategy).__name__),
            "routing_stats": self.strategy.stats(),
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

    def add(self, pool: BackendPool, embeddings: BackendPool | None = None) -> None:
        """Serve a pool (hot reload: a registry version whose engines are up)."""
        self.pools[pool.model] = pool
        if embeddings is not None:
            self.embedding_pools[pool.model] = embeddings

    def remove(self, name: str) -> None:
        """Stop serving a pool (hot reload: after its version was drained)."""
        self.pools.pop(name, None)
        self.embedding_pools.pop(name, None)

    def all_pools(self) -> list[tuple[str, BackendPool]]:
        """Every pool with its role ("generate" or "embeddings")."""
        return [("generate", p) for p in self.pools.values()] + [("embeddings", p) for p in self.embedding_pools.values()]

    def is_ready(self, model: str) -> bool:
        embedding = self.embedding_pools.get(model)
        return self.pools[model].is_ready() and (embedding is None or embedding.is_ready())

    def names(self) -> list[str]:
        return list(self.pools)
