"""Routing strategies as pure decision logic over plain replica data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from inferlab.router import (
    STRATEGY_NAMES,
    EngineLoad,
    LatencyEwmaStrategy,
    LeastOutstandingStrategy,
    PowerOfTwoStrategy,
    PrefixAwareStrategy,
    PrefixPolicy,
    RoundRobinStrategy,
    RoutingRequest,
    SessionAffinityStrategy,
    build_strategy,
)


@dataclass
class View:
    name: str
    in_flight: int = 0
    limit: int = 8
    load: EngineLoad = field(default_factory=EngineLoad)
    ewma_s: float | None = None


SYSTEM = "You are a helpful assistant. " * 100  # ~2,900 characters: a long shared prefix


def chat(system: str, user: str) -> RoutingRequest:
    return RoutingRequest({"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})


def test_round_robin_cycles() -> None:
    views = [View("a"), View("b"), View("c")]
    strategy = RoundRobinStrategy()
    picked = [strategy.choose(views, RoutingRequest({})).name for _ in range(6)]
    assert Counter(picked) == {"a": 2, "b": 2, "c": 2}


def test_least_outstanding_prefers_idle_and_engine_queue_counts() -> None:
    strategy = LeastOutstandingStrategy()
    assert strategy.choose([View("a", 3), View("b", 1), View("c", 2)], RoutingRequest({})).name == "b"
    # the engine reports a queue the gateway does not see (other gateways): it counts
    busy = View("b", 1, load=EngineLoad(running=4, waiting=3))
    assert strategy.choose([View("a", 2), busy], RoutingRequest({})).name == "a"


def test_least_outstanding_spreads_ties() -> None:
    strategy = LeastOutstandingStrategy()
    views = [View("a"), View("b")]
    assert {strategy.choose(views, RoutingRequest({})).name for _ in range(4)} == {"a", "b"}


def test_power_of_two_never_picks_the_worst_of_two() -> None:
    strategy = PowerOfTwoStrategy(seed=1)
    views = [View("a", 0), View("b", 9)]
    assert all(strategy.choose(views, RoutingRequest({})).name == "a" for _ in range(20))


def test_latency_ewma_explores_then_prefers_fast() -> None:
    strategy = LatencyEwmaStrategy()
    assert strategy.choose([View("a", ewma_s=0.1), View("b")], RoutingRequest({})).name == "b"
    views = [View("a", ewma_s=0.5), View("b", ewma_s=0.1, in_flight=2), View("c", ewma_s=0.2)]
    assert strategy.choose(views, RoutingRequest({})).name == "c"  # 0.2·1 < 0.1·3 < 0.5·1


def test_session_affinity_is_sticky_and_moves_only_when_its_replica_leaves() -> None:
    strategy = SessionAffinityStrategy()
    views = [View(name) for name in "abcd"]
    request = RoutingRequest({}, session_key="conversation-42")
    home = strategy.choose(views, request).name
    assert all(strategy.choose(views, request).name == home for _ in range(5))
    others = [v for v in views if v.name != home]
    moved = strategy.choose(others, request).name
    assert moved != home
    # other sessions keep their replicas when an unrelated replica leaves
    keys = [f"user-{i}" for i in range(50)]
    before = {k: strategy.choose(views, RoutingRequest({}, session_key=k)).name for k in keys}
    after = {k: strategy.choose(others, RoutingRequest({}, session_key=k)).name for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != home)


def test_prefix_aware_keeps_a_shared_prefix_on_one_replica_while_balanced() -> None:
    strategy = PrefixAwareStrategy()
    views = [View("a"), View("b"), View("c")]
    first = strategy.choose(views, request := chat(SYSTEM, "question 0"))
    strategy.routed(first, request)
    for i in range(1, 20):
        request = chat(SYSTEM, f"question {i}")
        chosen = strategy.choose(views, request)
        strategy.routed(chosen, request)
        assert chosen.name == first.name
    assert strategy.stats()["prefix_hits"] == 19


def test_prefix_aware_spreads_distinct_prefixes() -> None:
    strategy = PrefixAwareStrategy()
    views = [View("a"), View("b")]
    homes = []
    for p in range(4):
        request = chat(f"System prompt number {p}. " * 150, "hi")
        chosen = strategy.choose(views, request)
        strategy.routed(chosen, request)
        homes.append(chosen.name)
    assert Counter(homes) == {"a": 2, "b": 2}


def test_prefix_aware_falls_back_to_least_loaded_when_imbalanced() -> None:
    strategy = PrefixAwareStrategy(PrefixPolicy(balance_abs_threshold=2, balance_rel_threshold=1.5))
    a, b = View("a"), View("b")
    request = chat(SYSTEM, "q")
    strategy.routed(a, request)
    a.in_flight = 5  # a holds the prefix but is overloaded
    assert strategy.choose([a, b], chat(SYSTEM, "q2")).name == "b"
    assert strategy.stats()["balance_fallbacks"] == 1
    a.in_flight, b.in_flight = 2, 1  # roughly balanced again: the prefix wins
    assert strategy.choose([a, b], chat(SYSTEM, "q3")).name == "a"


def test_prefix_aware_trades_match_against_kv_pressure() -> None:
    strategy = PrefixAwareStrategy(PrefixPolicy(prefix_weight=1.0, kv_weight=2.0))
    a, b = View("a", load=EngineLoad(kv_cache=0.95)), View("b")
    strategy.routed(a, chat(SYSTEM, "q"))
    assert strategy.choose([a, b], chat(SYSTEM, "q2")).name == "b"


def test_prefix_aware_forgets_a_restarted_replica() -> None:
    strategy = PrefixAwareStrategy()
    strategy.routed(View("b"), chat(SYSTEM, "q"))
    strategy.forget("b")
    assert strategy.index.size("b") == 0


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_picks_a_candidate(name: str) -> None:
    strategy = build_strategy(name, seed=3)
    views = [View(f"r{i}", in_flight=i % 3) for i in range(5)]
    for i in range(10):
        request = chat(SYSTEM, f"q{i}")
        chosen = strategy.choose(views, request)
        strategy.routed(chosen, request)
        assert chosen in views
    assert isinstance(strategy.stats(), dict)


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing strategy"):
        build_strategy("random_walk")


def test_sessions_map_to_the_same_replica_in_every_gateway_process() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from inferlab.router import SessionAffinityStrategy, RoutingRequest, EngineLoad\n"
        "from types import SimpleNamespace as V\n"
        "views = [V(name=f'r{i}', in_flight=0, limit=8, load=EngineLoad(), ewma_s=None) for i in range(8)]\n"
        "s = SessionAffinityStrategy()\n"
        "print(','.join(s.choose(views, RoutingRequest({}, session_key=f'k{j}')).name for j in range(20)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, env=env)
    strategy = SessionAffinityStrategy()
    views = [View(f"r{i}") for i in range(8)]
    here = ",".join(strategy.choose(views, RoutingRequest({}, session_key=f"k{j}")).name for j in range(20))
    assert other.stdout.strip() == here
