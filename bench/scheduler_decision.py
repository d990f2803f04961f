"""Scheduling decision cost: 10,000 queued requests across 1,000 tenants, per policy.

A *decision* is what the queue does when a slot frees: ask the policy for the next waiter
(``peek``: aging check over the classes, the lowest counter among the tenants of the top class,
the earliest deadline of that tenant), take it out (``remove``) and charge its tenant
(``dispatched``). A *cycle* adds the rest of a request's life in the policy: its real usage
(``finished``, which re-keys its tenant) and a new arrival (``push``), so the queue stays at
10,000. Tenants are spread over three classes (10 % high, 30 % normal, 60 % low) with weights
16 / 4 / 1, a third of the requests carry deadlines, and prompt sizes vary.

    python bench/scheduler_decision.py [--queued 10000] [--tenants 1000] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.router import RoutingRequest
from inferlab.scheduler import SchedulingPolicy, make_policy


@dataclass(eq=False)
class Waiter:
    request: RoutingRequest
    enqueued_at: float
    seq: int
    exclude: frozenset[str] = frozenset()
    queued: bool = True


def tenants(count: int) -> list[tuple[str, int, float]]:
    found = []
    for index in range(count):
        share = index / count
        priority, weight = (2, 16.0) if share < 0.1 else (1, 4.0) if share < 0.4 else (0, 1.0)
        found.append((f"tenant-{index}", priority, weight))
    return found


def arrival(rng: random.Random, population: list[tuple[str, int, float]], now: float, seq: int) -> Waiter:
    tenant, priority, weight = rng.choice(population)
    deadline = now + rng.uniform(1, 30) if rng.random() < 0.33 else None
    request = RoutingRequest({}, priority=priority, tenant=tenant, weight=weight, deadline=deadline,
                             prompt_tokens=rng.randrange(20, 2000), max_tokens=rng.choice([64, 256, 1024]))
    return Waiter(request, now, seq)


def measure(name: str, queued: int, tenant_count: int, decisions: int) -> tuple[list[float], list[float]]:
    rng = random.Random(11)
    population = tenants(tenant_count)
    policy: SchedulingPolicy = make_policy(name, aging_s=10.0, horizon_s=30.0)
    now, seq = 0.0, 0
    for _ in range(queued):
        policy.push(arrival(rng, population, now, seq))
        seq += 1
    decision_us, cycle_us = [], []
    clock = time.perf_counter_ns
    for _ in range(decisions):
        now += 0.0005
        fresh = arrival(rng, population, now, seq)
        seq += 1
        started = clock()
        waiter = policy.peek(now)
        assert waiter is not None
        waiter.queued = False
        policy.remove(waiter)
        request = waiter.request
        request.dispatched_at = now
        policy.dispatched(request)
        decided = clock()
        policy.finished(request, request.prompt_tokens, 100)
        policy.push(fresh)
        ended = clock()
        decision_us.append((decided - started) / 1000)
        cycle_us.append((ended - started) / 1000)
    return decision_us, cycle_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.queued} queued, {args.tenants} tenants, "
          f"{args.decisions} decisions")
    print(f"{'policy':>10} | {'decision p50 µs':>15} | {'p99 µs':>7} | {'cycle p50 µs':>12} | {'p99 µs':>7}")
    for name in ("fifo", "priority", "vtc", "tiered"):
        decision, cycle = measure(name, args.queued, args.tenants, args.decisions)
        q = statistics.quantiles(decision, n=100)
        c = statistics.quantiles(cycle, n=100)
        print(f"{name:>10} | {statistics.median(decision):15.1f} | {q[98]:7.1f} | {statistics.median(cycle):12.1f} | "
              f"{c[98]:7.1f}")


if __name__ == "__main__":
    main()
