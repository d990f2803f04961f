"""The scheduler's interfaces: how the request path gets a slot, and what orders the waiters.

``QueueManager`` is what the request path calls (``Failover``, for every attempt): a lease on one
of the pool's replicas, at once when one is free, else after waiting its turn. It fails with

    NoReplicaAvailable   503  nothing in the pool is routable (raised by the pool, at once)
    QueueRejected        503  every replica is at its limit and the queue (or the class's part of it) is full
    QueueShed            503  a waiter turned away to make room for a higher class's request
    DeadlineUnreachable  503  at once: the measured drain rate says it cannot start before its deadline
    DeadlineExceeded     503  its deadline passed while it waited
    QueueTimeout         503  the wait exceeded the queue's bound

each with ``Retry-After``. ``SchedulingPolicy`` decides only who goes first among the waiters of
one queue, and keeps whatever state that takes (a fair queue's counters); the waiting itself
(bounds, timers, deadlines, shedding, cancellation, handing out leases) is the queue's. Policies
are pure decision logic over ``WaiterView`` and ``RoutingRequest`` fields, testable with any
object that has them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from inferlab.errors import ServiceUnavailable
from inferlab.router.protocol import RoutingRequest

if TYPE_CHECKING:
    from inferlab.router.pool import BackendPool, Lease


class QueueRejected(ServiceUnavailable):
    default_code = "queue_full"


class QueueShed(ServiceUnavailable):
    default_code = "shed"


class QueueTimeout(ServiceUnavailable):
    default_code = "queue_timeout"


class ColdStartTimeout(ServiceUnavailable):
    """The pool was scaled to zero and no replica of it became ready within the activation bound."""

    default_code = "cold_start_timeout"


class DeadlineUnreachable(ServiceUnavailable):
    default_code = "deadline_unreachable"


class DeadlineExceeded(ServiceUnavailable):
    default_code = "deadline_exceeded"


class WaiterView(Protocol):
    """The plain data a scheduling policy may read about one waiting request."""

    request: RoutingRequest  # its class, tenant, weight, deadline and size
    exclude: frozenset[str]  # replicas a retry must not use again
    enqueued_at: float  # the pool's clock when it started waiting
    seq: int  # arrival order in its queue, from 0
    queued: bool  # still waiting (False once served, cancelled, expired or shed)


class SchedulingPolicy(Protocol):
    """Who goes first among the waiters of one queue; one instance per queue, so it may keep state.

    The queue calls ``push`` when a waiter joins, ``peek`` for the next one to serve, ``remove``
    when a waiter leaves for any reason (served, cancelled, expired, shed; ``queued`` is already
    False), ``dispatched`` for every request that takes a slot (waiting or not: a fair queue
    charges its tenant here) and ``finished`` once its real usage is known.
    """

    name: str

    def push(self, waiter: WaiterView) -> None: ...

    def peek(self, now: float, lowest: int = 0) -> WaiterView | None:
        """The waiter to serve next (a queued one), or None when none waits. ``lowest``: the
        lowest class the pool has room for now (the classes below keep slots free for the higher
        ones, ``QueuePolicy.headroom``); a policy that orders by class skips the classes below it."""
        ...

    def remove(self, waiter: WaiterView) -> None: ...

    def dispatched(self, request: RoutingRequest) -> None: ...

    def finished(self, request: RoutingRequest, prompt_tokens: int, completion_tokens: int) -> None: ...

    def ahead(self, request: RoutingRequest) -> float:
        """About how many dispatches go before such a request if it joined now (aging aside)."""
        ...

    def waiters(self) -> Iterable[WaiterView]:
        """The queued waiters, roughly in the order they will be served."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The policy's own figures for ``GET /admin/backends`` (per class, per tenant...)."""
        ...


class QueueObserver(Protocol):
    """Where the queue reports what metrics want to know (``GatewayMetrics`` implements it)."""

    def queue_changed(self, model: str, depth: int) -> None: ...

    def queue_left(self, model: str, waited_s: float, outcome: str) -> None:
        """``outcome``: dispatched, rejected (never queued), shed, deadline, timeout or unavailable."""
        ...


class QueueManager(Protocol):
    async def acquire(self, pool: BackendPool, request: RoutingRequest,
                      exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on one of ``pool``'s replicas outside ``exclude``, waiting for a slot if need be."""
        ...

    def finished(self, pool: BackendPool, request: RoutingRequest, prompt_tokens: int,
                 completion_tokens: int) -> None:
        """The request ended with this real usage (a fair queue corrects its tenant's charge)."""
        ...

    def snapshot(self, pool: BackendPool) -> dict[str, Any]:
        """The pool's queue figures for ``GET /admin/backends``."""
        ...
