"""One pool's load signal for the decision (``decision.py``), read from in-memory state only.

- *load*, the requests in the system: per replica the higher of the gateway's in-flight count and
  the engine's own running + waiting (``router.protocol.pressure``: the engine also sees other
  gateways' requests), plus the gateway's queue for the pool (requests waiting for a slot);
- *pressure* ≥ 1, when the replicas are slower than the target assumes: the engines' mean KV-cache
  use over ``kv_target``, or the smoothed time to first token over the tier's TTFT SLO (capped at
  2: it adds replicas, it does not replace the load);
- *activity*: whether a request arrived since the last reading (idleness for scale to zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inferlab.router.pool import BackendPool
from inferlab.router.protocol import pressure

MAX_PRESSURE = 2.0


@dataclass(frozen=True, slots=True)
class Reading:
    load: float
    pressure: float
    active: bool  # a request arrived or was in the system since the previous reading
    signals: dict[str, float]


class PoolSignals:
    def __init__(self, pool: BackendPool, queue_depth: Callable[[], int], *, kv_target: float = 0.85,
                 ttft_slo_s: float | None = None) -> None:
        self.pool = pool
        self._depth = queue_depth
        self._kv_target = kv_target
        self._ttft_slo_s = ttft_slo_s
        self._requests = 0  # requests dispatched so far (over the replicas it has seen)
        self._seen: dict[str, int] = {}

    def _arrivals(self) -> int:
        """Requests dispatched since the previous reading (replicas come and go: counted per name)."""
        new = 0
        seen: dict[str, int] = {}
        for replica in self.pool.replicas:
            seen[replica.name] = replica.requests
            new += replica.requests - self._seen.get(replica.name, 0)
        self._seen = seen
        return max(0, new)

    def read(self) -> Reading:
        pool = self.pool
        queued = self._depth()
        in_system = 0.0
        in_flight = 0
        kv: list[float] = []
        ttfb: list[float] = []
        waiting = 0.0
        for replica in pool.replicas:
            in_flight += replica.in_flight
            in_system += pressure(replica)
            waiting += replica.load.waiting
            if replica.load.kv_cache is not None and replica.load.scraped_at:
                kv.append(replica.load.kv_cache)
            if replica.ewma_s is not None and not replica.cordoned:
                ttfb.append(replica.ewma_s)
        load = in_system + queued
        kv_use = sum(kv) / len(kv) if kv else 0.0
        ttft = sum(ttfb) / len(ttfb) if ttfb else 0.0
        factor = 1.0
        if kv_use > self._kv_target:
            factor = max(factor, kv_use / self._kv_target)
        if self._ttft_slo_s is not None and in_flight and ttft > self._ttft_slo_s:
            factor = max(factor, ttft / self._ttft_slo_s)
        arrivals = self._arrivals()
        signals = {"in_flight": float(in_flight), "queued": float(queued), "engine_waiting": waiting,
                   "kv_use": round(kv_use, 4), "ttft_s": round(ttft, 4)}
        return Reading(load, min(MAX_PRESSURE, factor), bool(arrivals or queued or in_flight), signals)
