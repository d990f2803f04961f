"""The router's interfaces: what a strategy sees of a replica, what it is asked, what it answers.

Strategies are pure decision logic over plain data: they read ``ReplicaView`` fields, never do
I/O, and can be unit-tested with any object that has those attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from inferlab.router.load import EngineLoad


class ReplicaView(Protocol):
    """The plain data a routing strategy may read about one replica."""

    name: str
    in_flight: int  # requests this gateway has on the replica now (exact, instant)
    limit: int  # the per-replica concurrency limit
    load: EngineLoad  # what the engine last reported (scraped in the background)
    ewma_s: float | None  # smoothed time to first byte, None until measured


@dataclass(slots=True)
class RoutingRequest:
    """What the router knows of one request when choosing its replica, and what the scheduler
    orders its wait by (``inferlab.scheduler``): its class, tenant, weight, deadline and size."""

    body: dict[str, Any]
    session_key: str | None = None
    priority: int = 0  # the priority class: 0 low, 1 normal, 2 high, 3 critical
    prefix_hashes: tuple[int, ...] | None = field(default=None)  # filled lazily by prefix routing
    served_by: list[str] = field(default_factory=list)  # replicas it was dispatched to, in order
    tenant: str = ""
    weight: float = 1.0  # the tenant's fair-share weight
    deadline: float | None = None  # time.monotonic() by which it must have started, if any
    prompt_tokens: int = 0  # estimated
    max_tokens: int | None = None
    charged: float = 0.0  # tokens charged to its tenant's fair-share counter so far (the scheduler's)
    dispatched_at: float | None = None  # when it last took a slot (the pool's clock)
    queued_s: float = 0.0  # time spent waiting in the pool's queue, over all attempts


class RoutingStrategy(Protocol):
    name: str

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        """Pick one of ``candidates`` (never empty; all healthy and below their limit)."""
        ...

    def routed(self, chosen: ReplicaView, request: RoutingRequest) -> None:
        """The request was dispatched to ``chosen`` (strategies with memory update it here)."""
        ...

    def forget(self, replica: str) -> None:
        """The replica lost its state (restarted, removed)."""
        ...

    def stats(self) -> dict[str, Any]:
        ...


def pressure(replica: ReplicaView) -> float:
    """How busy a replica is: the gateway's own count, or the engine's, whichever is higher.

    The engine's figure includes other gateways' requests but is up to one scrape interval old;
    the gateway's is instant but sees only its own traffic.
    """
    queued = replica.load.running + replica.load.waiting
    return float(replica.in_flight) if replica.in_flight >= queued else queued
