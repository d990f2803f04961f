"""Routing decision cost: one ``try_acquire`` + ``release`` on a pool of 64 replicas, per strategy.

That is the whole per-request routing work on the hot path (health gate and slot scan over every
replica, the strategy's choice, the prefix index lookup and update, the outcome bookkeeping). The
prompts are the prefix benchmark's shape: 8 system prompts of ~6,000 characters (~1,500 tokens)
and short user turns; replicas carry random in-flight counts and engine loads.

    python bench/routing_decision.py [--replicas 64] [--iterations 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.router import (
    STRATEGY_NAMES,
    BackendPool,
    EngineLoad,
    Outcome,
    Replica,
    RoutingRequest,
    build_strategy,
)
from inferlab.types import BackendHealth

WORDS = [
    "time", "person", "year", "way", "day", "thing", "world", "life", "hand", "part", "child", "eye", "place",
    "work", "week", "case", "point",
]


class _Backend:
    def __init__(self, name: str) -> None:
        self.name = name

    def is_available(self) -> bool:
        return True

    async def health(self) -> BackendHealth:  # pragma: no cover - never called here
        return BackendHealth(True)


def requests(rng: random.Random, count: int) -> list[dict[str, object]]:
    systems = [" ".join(rng.choices(WORDS, k=1100)) for _ in range(8)]
    return [
        {"messages": [{"role": "system", "content": rng.choice(systems)},
                      {"role": "user", "content": f"user {rng.randrange(1000)} asks question {i}"}]}
        for i in range(count)
    ]


def measure(strategy_name: str, replicas: int, iterations: int) -> tuple[float, float]:
    rng = random.Random(7)
    pool = BackendPool(
        "bench", [Replica(_Backend(f"r{i}"), limit=64) for i in range(replicas)],  # type: ignore[arg-type]
        strategy=build_strategy(strategy_name, seed=1),
    )
    for replica in pool.replicas:
        replica.in_flight = rng.randrange(0, 8)
        replica.load = EngineLoad(running=rng.randrange(0, 8), waiting=rng.randrange(0, 4),
                                  kv_cache=rng.random(), scraped_at=1.0)
        replica.ewma_s = rng.uniform(0.05, 0.5)
    bodies = requests(rng, 512)
    samples: list[float] = []
    perf = time.perf_counter
    for i in range(iterations):
        request = RoutingRequest(bodies[i % len(bodies)], session_key=f"user-{i % 97}")
        started = perf()
        lease = pool.try_acquire(request)
        assert lease is not None
        pool.release(lease, Outcome.SUCCESS)
        samples.append(perf() - started)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    print(f"routing decision cost, {args.replicas} replicas, {args.iterations} decisions, Python {sys.version.split()[0]}")
    print("| strategy | p50 µs | p99 µs |\n|---|---:|---:|")
    for name in STRATEGY_NAMES:
        p50, p99 = measure(name, args.replicas, args.iterations)
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
