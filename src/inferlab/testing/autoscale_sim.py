"""A replica model with an accelerated clock, to judge autoscaling policies on traces (no sleeping).

Requests arrive (Poisson, at a rate that follows a trace), wait in a FIFO queue, and hold one of
``slots`` slots of a ready replica for ``service_s``. The decision (``inferlab.autoscale``) is
taken every ``tick_s`` on the same signal the gateway reads (requests in the system: running +
queued); a replica asked for is ready ``startup_s`` later; a replica scaled down stops taking
requests at once and is paid for until its last request ends (cordon, drain, stop).

A request is *good* when it starts within ``slo_wait_s`` of its arrival. The *oracle* knows every
arrival in advance and runs, at each instant, just the replicas the requests in service need
(replica-seconds without a second of waiting): the bound a policy is compared with.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inferlab.autoscale.decision import Sample, ScaleDecider, ScalePolicy


@dataclass(frozen=True, slots=True)
class ReplicaModel:
    slots: int = 4  # requests one replica serves at once
    service_s: float = 2.0  # how long one request holds its slot
    startup_s: float = 5.0  # from "start one" to ready
    slo_wait_s: float = 1.0  # a request that waits longer for its slot misses the SLO
    tick_s: float = 1.0  # between two decisions
    dt: float = 0.05  # the simulation step


@dataclass
class TraceResult:
    replica_seconds: float
    oracle_replica_seconds: float
    requests: int
    good: int
    changes: int  # decisions that changed the replica count
    reversals: int  # an up followed by a down (or the reverse) within a stable window: flapping
    counts: list[int] = field(default_factory=list)  # replicas asked for, per tick

    @property
    def attainment(self) -> float:
        return self.good / self.requests if self.requests else 1.0

    @property
    def ratio(self) -> float:
        return self.replica_seconds / self.oracle_replica_seconds if self.oracle_replica_seconds else math.inf


def arrivals(rate: Callable[[float], float], duration_s: float, seed: int) -> list[float]:
    """Poisson arrival times over ``duration_s`` at ``rate(t)`` per second (thinning)."""
    rng = random.Random(seed)
    peak = max(rate(t / 10) for t in range(int(duration_s * 10) + 1)) or 1.0
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            return times
        if rng.random() * peak <= rate(t):
            times.append(t)


def oracle_replica_seconds(times: Sequence[float], model: ReplicaModel, duration_s: float, minimum: int = 0) -> float:
    """Replica-seconds of a pool that knows the future: ceil(requests in service / slots), each instant."""
    ends: list[float] = []
    total, i, t = 0.0, 0, 0.0
    while t < duration_s:
        while i < len(times) and times[i] <= t:
            heapq.heappush(ends, times[i] + model.service_s)
            i += 1
        while ends and ends[0] <= t:
            heapq.heappop(ends)
        total += max(minimum, math.ceil(len(ends) / model.slots)) * model.dt
        t += model.dt
    return total


def simulate(times: Sequence[float], policy: ScalePolicy, model: ReplicaModel, duration_s: float,
             initial: int = 1) -> TraceResult:
    decider = ScaleDecider(policy)
    queue: deque[float] = deque()  # arrival times of waiting requests
    running: list[tuple[float, int]] = []  # (end, replica id)
    ready: dict[int, int] = {}  # replica id -> requests running on it (serving replicas)
    draining: dict[int, int] = {}
    starting: list[tuple[float, int]] = []  # (ready at, id)
    next_id = initial
    for rid in range(initial):
        ready[rid] = 0
    paid = good = served = changes = reversals = 0
    paid_s = 0.0
    last_direction: tuple[str, float] | None = None
    last_request: float | None = 0.0
    counts: list[int] = []
    next_tick, i, t = 0.0, 0, 0.0
    while t < duration_s:
        while starting and starting[0][0] <= t:
            ready[heapq.heappop(starting)[1]] = 0
        while running and running[0][0] <= t:
            _, rid = heapq.heappop(running)
            if rid in ready:
                ready[rid] -= 1
            elif rid in draining:
                draining[rid] -= 1
                if not draining[rid]:
                    del draining[rid]
        while i < len(times) and times[i] <= t:
            queue.append(times[i])
            last_request = times[i]
            i += 1
        while queue:
            free = [rid for rid, busy in ready.items() if busy < model.slots]
            if not free:
                break
            rid = min(free, key=lambda r: ready[r])
            arrived = queue.popleft()
            served += 1
            good += t - arrived <= model.slo_wait_s
            ready[rid] += 1
            heapq.heappush(running, (t + model.service_s, rid))
        if t >= next_tick:
            next_tick += model.tick_s
            current = len(ready) + len(starting)
            load = float(len(running) + len(queue))
            decision = decider.decide(Sample(t, load, current, last_request_at=last_request))
            counts.append(decision.desired)
            if decision.desired != current:
                changes += 1
                if last_direction is not None and last_direction[0] != decision.direction \
                        and t - last_direction[1] < policy.stable_window_s:
                    reversals += 1
                last_direction = (decision.direction, t)
            for _ in range(decision.desired - current):
                heapq.heappush(starting, (t + model.startup_s, next_id))
                next_id += 1
            for _ in range(current - decision.desired):
                if starting:
                    starting.remove(max(starting))
                    heapq.heapify(starting)
                    continue
                rid = min(ready, key=lambda r: ready[r])
                busy = ready.pop(rid)
                if busy:
                    draining[rid] = busy
        paid = len(ready) + len(starting) + len(draining)
        paid_s += paid * model.dt
        t += model.dt
    good += 0  # requests still queued at the end are neither good nor counted
    oracle = oracle_replica_seconds(times, model, duration_s, minimum=policy.min_replicas)
    return TraceResult(paid_s, oracle, served + len(queue), good, changes, reversals, counts)
