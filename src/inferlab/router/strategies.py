"""Routing strategies behind one protocol (``protocol.RoutingStrategy``), chosen per model.

All are pure decision logic over ``ReplicaView`` data; the pool hands them only candidates that
are healthy and below their concurrency limit.

    round_robin          the next candidate in turn
    least_outstanding    fewest requests in flight (gateway count or engine-reported, the higher)
    power_of_two         two candidates at random, the less loaded of them
    latency_ewma         lowest smoothed time-to-first-byte × (in flight + 1) (peak-EWMA style)
    session_affinity     rendezvous hashing of the session key (user or conversation header)
    prefix_aware         see ``PrefixAwareStrategy``
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferlab.router.prefix_index import (
    DEFAULT_BLOCK_CHARS,
    DEFAULT_MAX_BLOCKS,
    PrefixIndex,
    block_hashes,
    prompt_text,
)
from inferlab.router.protocol import ReplicaView, RoutingRequest, RoutingStrategy, pressure


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (``hash(str)`` is salted per process), so
    that every gateway replica sends a session to the same engine replica."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _Stateless:
    """Defaults for strategies without memory."""

    name = "base"

    def routed(self, chosen: ReplicaView, request: RoutingRequest) -> None:
        pass

    def forget(self, replica: str) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


class RoundRobinStrategy(_Stateless):
    name = "round_robin"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        self._turn += 1
        return candidates[self._turn % len(candidates)]


class LeastOutstandingStrategy(_Stateless):
    name = "least_outstanding"

    def __init__(self) -> None:
        self._turn = 0

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        # Start the scan at a rotating offset so that ties spread instead of piling on the first.
        self._turn += 1
        count = len(candidates)
        start = self._turn % count
        best = candidates[start]
        best_load = pressure(best)
        for step in range(1, count):
            candidate = candidates[(start + step) % count]
            load = pressure(candidate)
            if load < best_load:
                best, best_load = candidate, load
        return best


class PowerOfTwoStrategy(_Stateless):
    name = "power_of_two"

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        if len(candidates) == 1:
            return candidates[0]
        first, second = self._random.sample(range(len(candidates)), 2)
        a, b = candidates[first], candidates[second]
        return a if pressure(a) <= pressure(b) else b


class LatencyEwmaStrategy(_Stateless):
    """Lowest expected wait: smoothed TTFB × (outstanding + 1). Unmeasured replicas get tried first."""

    name = "latency_ewma"

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        best = candidates[0]
        best_cost = float("inf")
        for candidate in candidates:
            ewma = candidate.ewma_s
            if ewma is None:
                return candidate
            cost = ewma * (pressure(candidate) + 1.0)
            if cost < best_cost:
                best, best_cost = candidate, cost
        return best


class SessionAffinityStrategy(_Stateless):
    """Rendezvous (highest-random-weight) hashing: a session keeps its replica while that replica
    is a candidate, and only the sessions of a replica that leaves move elsewhere."""

    name = "session_affinity"

    def __init__(self) -> None:
        self._fallback = LeastOutstandingStrategy()
        self._seeds: dict[str, int] = {}  # replica name → its stable hash, computed once
        self.sticky = 0
        self.unkeyed = 0

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        key = request.session_key
        if key is None:
            self.unkeyed += 1
            return self._fallback.choose(candidates, request)
        self.sticky += 1
        session = stable_hash(key)
        seeds = self._seeds
        best, best_weight = candidates[0], -1
        for candidate in candidates:
            seed = seeds.get(candidate.name)
            if seed is None:
                seed = seeds[candidate.name] = stable_hash(candidate.name)
            weight = hash((session, seed))  # ints hash identically in every process
            if weight > best_weight:
                best, best_weight = candidate, weight
        return best

    def stats(self) -> dict[str, Any]:
        return {"keyed": self.sticky, "unkeyed": self.unkeyed}


@dataclass(frozen=True, slots=True)
class PrefixPolicy:
    block_chars: int = DEFAULT_BLOCK_CHARS
    max_blocks: int = DEFAULT_MAX_BLOCKS  # blocks hashed per prompt (prefix depth considered)
    capacity_blocks: int = 16384  # LRU bound per replica
    prefix_weight: float = 1.0
    queue_weight: float = 0.5
    kv_weight: float = 0.3
    balance_abs_threshold: float = 4.0
    balance_rel_threshold: float = 1.5


class PrefixAwareStrategy:
    """Prefix-cache-aware routing, scored together with load.

    score = prefix_weight · matched_fraction − queue_weight · pressure/limit − kv_weight · kv_use

    Unlike a pure "best match above a threshold, else shortest queue" rule, the match is traded
    against load continuously, so a replica with a slightly shorter match but an idle queue can
    win. When the pool is imbalanced (max − min pressure above ``balance_abs_threshold`` and max
    above ``balance_rel_threshold`` × min) the least-loaded replica is taken whatever it caches.
    Ties (typically a prefix never seen) go to the replica whose index holds the fewest blocks,
    which spreads distinct prefixes over the pool.
    """

    name = "prefix_aware"

    def __init__(self, policy: PrefixPolicy | None = None) -> None:
        self.policy = policy or PrefixPolicy()
        self.index = PrefixIndex(self.policy.capacity_blocks)
        self.decisions = 0
        self.prefix_hits = 0
        self.balance_fallbacks = 0

    def hashes(self, request: RoutingRequest) -> tuple[int, ...]:
        if request.prefix_hashes is None:
            policy = self.policy
            request.prefix_hashes = block_hashes(prompt_text(request.body), policy.block_chars, policy.max_blocks)
        return request.prefix_hashes

    def choose(self, candidates: Sequence[ReplicaView], request: RoutingRequest) -> ReplicaView:
        self.decisions += 1
        if len(candidates) == 1:
            return candidates[0]
        policy = self.policy
        loads = [pressure(candidate) for candidate in candidates]
        low, high = min(loads), max(loads)
        if high - low > policy.balance_abs_threshold and high > policy.balance_rel_threshold * low:
            self.balance_fallbacks += 1
            return candidates[loads.index(low)]
        hashes = self.hashes(request)
        matched = self.index.match(hashes) if hashes else {}
        prefix_weight = policy.prefix_weight / (len(hashes) or 1)
        queue_weight, kv_weight, size = policy.queue_weight, policy.kv_weight, self.index.size
        best = candidates[0]
        best_key = (float("-inf"), 0)
        for candidate, load in zip(candidates, loads, strict=True):
            kv = candidate.load.kv_cache
            score = prefix_weight * matched.get(candidate.name, 0) - queue_weight * load / (candidate.limit or 1)
            if kv:
                score -= kv_weight * kv
            key = (score, -size(candidate.name))
            if key > best_key:
                best, best_key = candidate, key
        if matched.get(best.name):
            self.prefix_hits += 1
        return best

    def routed(self, chosen: ReplicaView, request: RoutingRequest) -> None:
        hashes = self.hashes(request)
        if hashes:
            self.index.insert(chosen.name, hashes)

    def forget(self, replica: str) -> None:
        self.index.forget(replica)

    def stats(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "prefix_hits": self.prefix_hits,
            "balance_fallbacks": self.balance_fallbacks,
        }


STRATEGY_NAMES = ("round_robin", "least_outstanding", "power_of_two", "latency_ewma", "session_affinity", "prefix_aware")


def build_strategy(name: str, prefix: PrefixPolicy | None = None, seed: int | None = None) -> RoutingStrategy:
    """The strategy called ``name`` (one of ``STRATEGY_NAMES``)."""
    if name == "round_robin":
        return RoundRobinStrategy()
    if name == "least_outstanding":
        return LeastOutstandingStrategy()
    if name == "power_of_two":
        return PowerOfTwoStrategy(seed)
    if name == "latency_ewma":
        return LatencyEwmaStrategy()
    if name == "session_affinity":
        return SessionAffinityStrategy()
    if name == "prefix_aware":
        return PrefixAwareStrategy(prefix)
    raise ValueError(f"unknown routing strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")
