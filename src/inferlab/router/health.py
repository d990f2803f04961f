"""Active health probing: one background task checks every replica of every pool.

Each replica's own adapter knows its probe (llama.cpp and vLLM ``/health``, Ollama ``/api/tags``,
any OpenAI-compatible server ``/v1/models``): the monitor calls ``backend.health()`` every
``interval_s`` (sooner for a replica whose ejection just ended), marks a replica unhealthy after
``unhealthy_threshold`` failed probes and healthy again after one success, and tells the breaker,
whose OPEN → HALF_OPEN step waits for a successful probe. When a replica comes back after being
down, routing forgets what it cached (a restarted engine has an empty cache). Every verdict and
every engine coming or going signals the pool's capacity listeners, so waiters are served, or
failed at once when nothing routable is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inferlab.router.pool import BackendPool
from inferlab.router.replica import Replica

TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    interval_s: float = 5.0
    timeout_s: float = 2.0
    unhealthy_threshold: int = 2


class HealthMonitor:
    def __init__(self, pools: Sequence[BackendPool], policies: Mapping[int, HealthPolicy] | None = None,
                 logger: logging.Logger | None = None) -> None:
        """``policies``: ``id(pool)`` → its policy; pools not in it get the defaults."""
        self.pools = tuple(pools)
        self._policies = dict(policies or {})
        self._default = HealthPolicy()
        self._log = logger or logging.getLogger("inferlab.router.health")
        self._task: asyncio.Task[None] | None = None
        self._probing: set[int] = set()  # id() of replicas being probed
        self._inflight: set[asyncio.Task[None]] = set()

    def add_pool(self, pool: BackendPool, policy: HealthPolicy | None = None) -> None:
        """Probe one more pool from now on (hot reload)."""
        self.pools = (*self.pools, pool)
        if policy is not None:
            self._policies[id(pool)] = policy

    def remove_pool(self, pool: BackendPool) -> None:
        self.pools = tuple(p for p in self.pools if p is not pool)
        self._policies.pop(id(pool), None)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="router-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._inflight) if t is not None]
        for pending in tasks:
            pending.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    async def _run(self) -> None:
        while True:
            for pool, replica in self._due():
                self._probing.add(id(replica))
                probe = asyncio.create_task(self._probe(pool, replica), name=f"probe-{replica.name}")
                self._inflight.add(probe)
                probe.add_done_callback(self._inflight.discard)
            for pool in self.pools:
                self._watch_availability(pool)
            await asyncio.sleep(TICK_S)

    def _due(self) -> list[tuple[BackendPool, Replica]]:
        due = []
        for pool in self.pools:
            now = pool.clock()
            for replica in pool.replicas:
                if id(replica) in self._probing or not replica.backend.is_available():
                    continue  # a managed engine that is (re)starting is its supervisor's business
                if now >= replica.next_probe_at or replica.breaker.probe_due(now):
                    due.append((pool, replica))
        return due

    def policy(self, pool: BackendPool) -> HealthPolicy:
        return self._policies.get(id(pool), self._default)

    async def _probe(self, pool: BackendPool, replica: Replica) -> None:
        timeout_s = self.policy(pool).timeout_s
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    verdict = await replica.backend.health()
                healthy, detail = verdict.healthy, verdict.detail
            except TimeoutError:
                healthy, detail = False, f"probe timed out after {timeout_s:g}s"
            self.record_probe(pool, replica, healthy, detail)
        finally:
            self._probing.discard(id(replica))

    def record_probe(self, pool: BackendPool, replica: Replica, healthy: bool, detail: str) -> None:
        """Apply one probe verdict (also the seam tests use to drive health without I/O)."""
        policy = self.policy(pool)
        now = pool.clock()
        replica.next_probe_at = now + policy.interval_s
        replica.probe_detail = detail
        was = replica.probe_healthy
        if healthy:
            replica.probe_failures = 0
            replica.probe_healthy = True
        else:
            replica.probe_failures += 1
            if replica.probe_failures >= policy.unhealthy_threshold:
                replica.probe_healthy = False
        replica.breaker.on_probe(healthy, now)
        if was != replica.probe_healthy:
            self._log.warning("replica health changed", extra={
                "model": pool.model, "replica": replica.name, "healthy": replica.probe_healthy, "detail": detail})
            if replica.probe_healthy:
                pool.strategy.forget(replica.name)
        pool.observer.replica_changed(pool.model, replica.name, replica.healthy(), replica.breaker.state.value)
        pool.capacity_changed()

    @staticmethod
    def _watch_availability(pool: BackendPool) -> None:
        """A managed engine that restarted lost its cache; a pool that lost its last replica fails
        its waiters now rather than at their timeout."""
        changed = False
        for replica in pool.replicas:
            available = replica.backend.is_available()
            if available != replica.was_available:
                replica.was_available = available
                changed = True
                if available:
                    pool.strategy.forget(replica.name)
                    replica.next_probe_at = 0.0
                pool.observer.replica_changed(pool.model, replica.name, replica.healthy(), replica.breaker.state.value)
        if changed:
            pool.capacity_changed()
