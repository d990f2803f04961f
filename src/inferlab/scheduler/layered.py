"""The layered scheduling policy: priority classes, fairness across tenants, order within a tenant.

    class      strict priority: the highest class with a waiter goes first (``classes``) ...
    aging      ... unless a waiter of a lower class has waited ``aging_s``: the oldest such one
               goes first, so a class under continuous higher load still moves. Such jumps are
               budgeted: every dispatch earns ``aging_share`` of a jump (up to one banked), so
               aged waiters take at most that share of the slots from higher classes and a
               sustained overload of a low class cannot turn the queue into FIFO
    tenant     within a class, the backlogged tenant with the lowest fair-share counter (``fair``):
               tokens served over its weight, charged when a request takes a slot (its prompt as
               estimated, scaled by what the engine's counts have shown, plus the expected
               completion) and corrected to the real usage when it ends, so a tenant
               sending long prompts is charged for them (VTC). A tenant that starts waiting is
               lifted to the lowest counter of those already waiting, so idling earns no credit
    request    within a tenant, earliest deadline first (``edf``; a request without a deadline
               counts as due ``horizon_s`` after it arrived), else arrival

One configuration per named policy (``build.py``): ``tiered`` is all of it; ``priority`` is
classes and arrival; ``vtc`` is one class, fair across tenants, arrival within each.

Every decision is O(log n): a heap of tenants per class keyed by counter, a heap per tenant keyed
by deadline, an arrival deque per class for aging; entries of waiters that left, and tenants
whose counter changed, are skipped lazily (a stamp marks the live entry of each tenant).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inferlab.router.protocol import RoutingRequest
from inferlab.scheduler.counters import FairCounters, LocalCounters
from inferlab.scheduler.protocol import WaiterView

EXPECTED_COMPLETION = 256.0  # tokens charged for a completion before any request of the pool ended
LEARNING_RATE = 0.05  # of the EWMAs of completions and of real prompt tokens over estimated ones


@dataclass(frozen=True, slots=True)
class Layering:
    classes: bool = True  # strict priority classes
    fair: bool = True  # weighted fair queuing across tenants within a class
    edf: bool = True  # earliest deadline first within a tenant (else arrival)
    aging_s: float | None = 10.0  # a waiter older than this goes first, whatever its class...
    aging_share: float = 0.03  # ...for at most this share of the dispatches
    horizon_s: float = 30.0  # EDF: the deadline of a request that names none, after its arrival


class _Flow:
    """One tenant's waiters in one class (or the whole class when not fair)."""

    __slots__ = ("heap", "live", "stamp", "tenant", "weight")

    def __init__(self, tenant: str, weight: float) -> None:
        self.tenant = tenant
        self.weight = weight
        self.heap: list[tuple[float, int, WaiterView]] = []
        self.live = 0
        self.stamp = 0

    def head(self) -> WaiterView:
        heap = self.heap
        while not heap[0][2].queued:
            heapq.heappop(heap)
        return heap[0][2]


class _Band:
    """One priority class."""

    __slots__ = ("arrivals", "flows", "live", "rank", "ready", "vtime", "weight")

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.flows: dict[str, _Flow] = {}
        self.ready: list[tuple[float, int, str]] = []  # (counter, stamp, tenant) of backlogged flows
        self.arrivals: deque[WaiterView] = deque()
        self.live = 0
        self.weight = 0.0  # of the backlogged flows
        self.vtime = 0.0  # the counter of the tenant served last: where a tenant of an idle class starts

    def oldest(self) -> WaiterView | None:
        arrivals = self.arrivals
        while arrivals and not arrivals[0].queued:
            arrivals.popleft()
        return arrivals[0] if arrivals else None

    def top(self) -> _Flow:
        """The backlogged flow with the lowest counter (call only while ``live``)."""
        ready, flows = self.ready, self.flows
        while True:
            _, stamp, tenant = ready[0]
            flow = flows.get(tenant)
            if flow is not None and flow.stamp == stamp:
                return flow
            heapq.heappop(ready)


class LayeredPolicy:
    """A ``SchedulingPolicy``; see the module docstring."""

    def __init__(self, name: str, layering: Layering, counters: FairCounters | None = None) -> None:
        self.name = name
        self.layering = layering
        self.counters: FairCounters = counters if counters is not None else LocalCounters()
        self._bands: dict[int, _Band] = {}
        self._stamps = itertools.count(1)
        self._generation = self.counters.generation
        self._expected_completion: float | None = None
        self._aging_credit = 1.0  # jumps banked (at most one)
        self._jumper: RoutingRequest | None = None  # the aged waiter ``peek`` last let jump
        self._prompt_scale = 1.0  # real prompt tokens over the estimate (the engine's tokenizer, its template)

    # -- keys ------------------------------------------------------------------------------------

    def _rank(self, request: RoutingRequest) -> int:
        return request.priority if self.layering.classes else 0

    def _tenant(self, request: RoutingRequest) -> str:
        return request.tenant if self.layering.fair else ""

    def _order(self, waiter: WaiterView) -> float:
        if not self.layering.edf:
            return 0.0  # ties: arrival (seq)
        deadline = waiter.request.deadline
        return deadline if deadline is not None else waiter.enqueued_at + self.layering.horizon_s

    def _ready(self, band: _Band, flow: _Flow) -> None:
        """(Re-)key a backlogged flow by its tenant's current counter."""
        flow.stamp = next(self._stamps)
        heapq.heappush(band.ready, (self.counters.value(flow.tenant), flow.stamp, flow.tenant))
        if len(band.ready) > 4 * len(band.flows) + 64:  # stale entries piled up: rebuild
            self._rekey(band)

    def _rekey(self, band: _Band) -> None:
        band.ready = []
        for flow in band.flows.values():
            flow.stamp = next(self._stamps)
            band.ready.append((self.counters.value(flow.tenant), flow.stamp, flow.tenant))
        heapq.heapify(band.ready)

    def _refresh(self) -> None:
        """Counters merged from elsewhere (other gateways): re-sort every class's tenants."""
        if self.counters.generation != self._generation:
            self._generation = self.counters.generation
            for band in self._bands.values():
                if self.layering.fair and band.flows:
                    self._rekey(band)

    # -- the queue's calls -----------------------------------------------------------------------

    def push(self, waiter: WaiterView) -> None:
        request = waiter.request
        rank = self._rank(request)
        band = self._bands.get(rank)
        if band is None:
            band = self._bands[rank] = _Band(rank)
        tenant = self._tenant(request)
        flow = band.flows.get(tenant)
        if flow is None:
            flow = band.flows[tenant] = _Flow(tenant, request.weight)
            if self.layering.fair:
                self._refresh()
                self._lift(band, tenant)
                band.weight += flow.weight
                self._ready(band, flow)
        heapq.heappush(flow.heap, (self._order(waiter), waiter.seq, waiter))
        flow.live += 1
        band.live += 1
        band.arrivals.append(waiter)

    def _lift(self, band: _Band, tenant: str) -> None:
        floor = self.counters.value(band.top().tenant) if band.live else band.vtime
        self.counters.lift(tenant, floor)

    def peek(self, now: float, lowest: int = 0) -> WaiterView | None:
        self._refresh()
        top: _Band | None = None
        for band in self._bands.values():
            if band.live and band.rank >= lowest and (top is None or band.rank > top.rank):
                top = band
        if top is None:
            return None
        aged = self._aged(now, top.rank, lowest)
        if aged is not None:
            self._jumper = aged.request
            return aged
        flow = top.top() if self.layering.fair else top.flows[""]
        return flow.head()

    def _aged(self, now: float, top: int, lowest: int) -> WaiterView | None:
        """The oldest waiter of a class below ``top`` that has waited ``aging_s``, if a jump is banked."""
        aging_s = self.layering.aging_s
        if aging_s is None or self._aging_credit < 1.0:
            return None
        aged: WaiterView | None = None
        for band in self._bands.values():
            if band.live and lowest <= band.rank < top:
                oldest = band.oldest()
                if oldest is not None and now - oldest.enqueued_at >= aging_s and (aged is None or oldest.seq < aged.seq):
                    aged = oldest
        return aged

    def remove(self, waiter: WaiterView) -> None:
        request = waiter.request
        band = self._bands[self._rank(request)]
        tenant = self._tenant(request)
        flow = band.flows[tenant]
        flow.live -= 1
        band.live -= 1
        if flow.live == 0:
            del band.flows[tenant]
            band.weight -= flow.weight
        if band.live == 0:
            band.arrivals.clear()
            band.ready.clear()
            band.weight = 0.0

    def dispatched(self, request: RoutingRequest) -> None:
        if request is self._jumper:
            self._aging_credit -= 1.0
            self._jumper = None
        self._aging_credit = min(1.0, self._aging_credit + self.layering.aging_share)
        if not self.layering.fair:
            return
        charge = request.prompt_tokens * self._prompt_scale + self._expected(request)
        tenant = request.tenant
        before = self.counters.value(tenant)
        band = self._bands.get(self._rank(request))
        if band is not None and before > band.vtime:
            band.vtime = before
        request.charged = charge
        self._charge(tenant, charge / request.weight)

    def finished(self, request: RoutingRequest, prompt_tokens: int, completion_tokens: int) -> None:
        if completion_tokens:
            seen = self._expected_completion
            self._expected_completion = (float(completion_tokens) if seen is None
                                         else seen + LEARNING_RATE * (completion_tokens - seen))
        if prompt_tokens and request.prompt_tokens:
            scale = min(10.0, max(0.1, prompt_tokens / request.prompt_tokens))
            self._prompt_scale += LEARNING_RATE * (scale - self._prompt_scale)
        if not self.layering.fair or request.dispatched_at is None:
            return
        actual = float(prompt_tokens + completion_tokens)
        if actual != request.charged:
            self._charge(request.tenant, (actual - request.charged) / request.weight)
            request.charged = actual

    def _expected(self, request: RoutingRequest) -> float:
        expected = self._expected_completion if self._expected_completion is not None else EXPECTED_COMPLETION
        return min(expected, request.max_tokens) if request.max_tokens is not None else expected

    def _charge(self, tenant: str, amount: float) -> None:
        self.counters.add(tenant, amount)
        for band in self._bands.values():
            flow = band.flows.get(tenant)
            if flow is not None:
                self._ready(band, flow)

    # -- estimates and views ---------------------------------------------------------------------

    def ahead(self, request: RoutingRequest) -> float:
        rank = self._rank(request)
        higher = sum(band.live for band in self._bands.values() if band.rank > rank)
        band = self._bands.get(rank)
        if band is None or not band.live:
            return float(higher)
        if not self.layering.fair:
            return float(higher + band.live)
        flow = band.flows.get(request.tenant)
        own = flow.live if flow is not None else 0
        weight = band.weight + (0.0 if flow is not None else request.weight)
        rounds = (own + 1) * weight / request.weight - 1  # others served while its own go, one by one
        return higher + min(float(band.live), rounds)

    def waiting_at_or_below(self, rank: int) -> int:
        """Waiters of classes at or below ``rank``: what ages before a request of that class would."""
        return sum(band.live for band in self._bands.values() if band.rank <= rank)

    def waiters(self) -> Iterator[WaiterView]:
        for band in sorted(self._bands.values(), key=lambda b: -b.rank):
            yield from [waiter for waiter in band.arrivals if waiter.queued]

    def depths(self) -> dict[int, int]:
        return {band.rank: band.live for band in self._bands.values() if band.live}

    def snapshot(self) -> dict[str, Any]:
        return {
            "classes": {str(rank): depth for rank, depth in sorted(self.depths().items())},
            "tenants_waiting": sum(len(band.flows) for band in self._bands.values()) if self.layering.fair else None,
            "expected_completion_tokens": self._expected_completion,
            "prompt_scale": round(self._prompt_scale, 3),
        }
