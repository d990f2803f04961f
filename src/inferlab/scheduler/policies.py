"""Scheduling policies by name: ``fifo`` here; ``priority``, ``vtc`` and ``tiered`` (the default)
are configurations of ``LayeredPolicy`` (``layered.py``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, get_args

from inferlab.config.tenants import PriorityClass
from inferlab.router.protocol import RoutingRequest
from inferlab.scheduler.counters import FairCounters
from inferlab.scheduler.layered import LayeredPolicy, Layering
from inferlab.scheduler.protocol import SchedulingPolicy, WaiterView

CLASS_NAMES: tuple[str, ...] = get_args(PriorityClass)  # rank = index: low 0 … critical 3
POLICY_NAMES = ("tiered", "fifo", "priority", "vtc")


def class_rank(name: str) -> int:
    return CLASS_NAMES.index(name)


class FifoPolicy:
    """Arrival order, whatever the class or tenant."""

    name = "fifo"

    def __init__(self) -> None:
        self._arrivals: deque[WaiterView] = deque()
        self._live = 0

    def push(self, waiter: WaiterView) -> None:
        self._arrivals.append(waiter)
        self._live += 1

    def peek(self, now: float, lowest: int = 0) -> WaiterView | None:
        arrivals = self._arrivals
        while arrivals and not arrivals[0].queued:
            arrivals.popleft()
        if not arrivals or arrivals[0].request.priority < lowest:
            return None  # the head waits for room for its class: nobody passes it
        return arrivals[0]

    def remove(self, waiter: WaiterView) -> None:
        self._live -= 1
        if not self._live:
            self._arrivals.clear()

    def dispatched(self, request: RoutingRequest) -> None:
        pass

    def finished(self, request: RoutingRequest, prompt_tokens: int, completion_tokens: int) -> None:
        pass

    def ahead(self, request: RoutingRequest) -> float:
        return float(self._live)

    def waiters(self) -> Iterator[WaiterView]:
        yield from [waiter for waiter in self._arrivals if waiter.queued]

    def snapshot(self) -> dict[str, Any]:
        return {}


def make_policy(name: str, *, aging_s: float | None, horizon_s: float, aging_share: float = 0.03,
                counters: FairCounters | None = None) -> SchedulingPolicy:
    """A fresh policy of that name for one pool's queue (``counters``: the pool's fair-share counters)."""
    if name == "fifo":
        return FifoPolicy()
    layering = {
        "priority": Layering(classes=True, fair=False, edf=False, aging_s=aging_s, aging_share=aging_share,
                             horizon_s=horizon_s),
        "vtc": Layering(classes=False, fair=True, edf=False, aging_s=None, horizon_s=horizon_s),
        "tiered": Layering(classes=True, fair=True, edf=True, aging_s=aging_s, aging_share=aging_share,
                           horizon_s=horizon_s),
    }.get(name)
    if layering is None:
        raise ValueError(f"unknown scheduling policy {name!r}; one of {', '.join(POLICY_NAMES)}")
    return LayeredPolicy(name, layering, counters)


PolicyFactory = Callable[[], SchedulingPolicy]
