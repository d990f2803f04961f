"""The scheduler's interfaces: how the request path gets a slot, and what orders the waiters.

``QueueManager`` is what the request path calls (``Failover``, for every attempt): a lease on one
of the pool's replicas, at once when one is free, else after waiting its turn. It fails with

    NoReplicaAvailable   503  nothing in the pool is routable (raised by the pool, at once)
    QueueRejected        503  every replica is at its limit and the queue is full
    QueueTimeout         503  the wait exceeded its bound

each with ``Retry-After``. ``SchedulingPolicy`` decides only who goes first among the waiters of
one queue; the waiting itself (bounds, timers, cancellation, handing out leases) is the queue's.
Policies are pure decision logic over ``WaiterView`` fields, testable with any object that has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from inferlab.errors import ServiceUnavailable
from inferlab.router.protocol import RoutingRequest

if TYPE_CHECKING:
    from inferlab.router.pool import BackendPool, Lease

SortKey = tuple[float, ...]


class QueueRejected(ServiceUnavailable):
    default_code = "queue_full"


class QueueTimeout(ServiceUnavailable):
    default_code = "queue_timeout"


class WaiterView(Protocol):
    """The plain data a scheduling policy may read about one waiting request."""

    request: RoutingRequest  # its priority hint (and what later policies key on)
    exclude: frozenset[str]  # replicas a retry must not use again
    enqueued_at: float  # the pool's clock when it started waiting
    seq: int  # arrival order in its queue, from 0


class SchedulingPolicy(Protocol):
    """Who goes first among the waiters of one queue.

    One instance per queue, so a policy may keep state (a fair queue's virtual time). ``key`` is
    called once, when a waiter joins (``seq`` and ``enqueued_at`` are set): smaller goes first, and
    arrival breaks ties. Strict priority, deadlines (EDF) and weighted fair queueing are keys.
    """

    name: str

    def key(self, waiter: WaiterView) -> SortKey: ...

    def served(self, waiter: WaiterView) -> None:
        """The waiter left the queue with a lease (a fair queue advances its virtual time here)."""
        ...


class QueueObserver(Protocol):
    """Where the queue reports what metrics want to know (``GatewayMetrics`` implements it)."""

    def queue_changed(self, model: str, depth: int) -> None: ...

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None:
        """``outcome``: dispatched, rejected (never queued), timeout or unavailable."""
        ...


class QueueManager(Protocol):
    async def acquire(self, pool: BackendPool, request: RoutingRequest,
                      exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on one of ``pool``'s replicas outside ``exclude``, waiting for a slot if need be."""
        ...

    def snapshot(self, pool: BackendPool) -> dict[str, Any]:
        """The pool's queue figures for ``GET /admin/backends``."""
        ...
