"""Hot reload: the pools of the served versions follow the registry, without a restart.

``apply(state)`` builds the pools of versions newly served (starting their managed engines through
the coordinator's builders), waits until they can take requests (bounded), adds them to the
router, the health monitor, the load scraper and the scheduler, and only then lets the resolver
serve from the new state — so an alias never points at a pool that is still starting. Versions no
longer served are drained in the background: no new call resolves to them, and once the calls
holding them have ended (or ``drain_s`` passed) their engines are stopped and their pools removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from inferlab.config import ModelConfig
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.coordinator.locate import EngineUnavailable
from inferlab.coordinator.replicas import Replicas
from inferlab.errors import InferLabError
from inferlab.registry.model import ModelVersion, RegistryState
from inferlab.registry.resolve import Resolver, served_versions
from inferlab.router import HealthMonitor, LoadScraper, ModelRouter
from inferlab.router.build import health_policy
from inferlab.router.pool import BackendPool
from inferlab.scheduler.build import queue_policy
from inferlab.scheduler.queue import WaitQueues

BuildPools = Callable[[ModelConfig], Replicas]


@dataclass
class _Built:
    version: ModelVersion
    replicas: Replicas

    @property
    def pools(self) -> list[BackendPool]:
        return [pool for model in self.replicas.models for pool in model.pools()]


class ServedVersions:
    def __init__(self, resolver: Resolver, router: ModelRouter, build: BuildPools, *, health: HealthMonitor,
                 scraper: LoadScraper, queues: WaitQueues, static: set[tuple[str, str]],
                 start_timeout_s: float, drain_s: float, logger: logging.Logger) -> None:
        self._resolver = resolver
        self._router = router
        self._build = build
        self._health = health
        self._scraper = scraper
        self._queues = queues
        self._static = static
        self._start_timeout_s = start_timeout_s
        self._drain_s = drain_s
        self._log = logger
        self.built: dict[tuple[str, str], _Built] = {}
        self._retiring: list[_Built] = []  # being drained
        self._draining: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def engines(self) -> list[ManagedEngine]:
        """The managed engines of the served versions and of those being drained."""
        return [engine for built in [*self.built.values(), *self._retiring] for engine in built.replicas.engines]

    async def apply(self, state: RegistryState) -> None:
        async with self._lock:
            wanted = served_versions(state) - self._static
            started = [self._start(state.versions[key]) for key in sorted(wanted - set(self.built))]
            added = [built for built in started if built is not None]
            await self._ready(added)
            for built in added:
                self.built[(built.version.model, built.version.version)] = built
                self._serve(built)
            self._resolver.install(state)
            for key in sorted(set(self.built) - wanted):
                gone = self.built.pop(key)
                self._retiring.append(gone)
                task = asyncio.get_running_loop().create_task(self._drain(gone), name=f"drain-{gone.version.pool}")
                self._draining.add(task)
                task.add_done_callback(self._draining.discard)
            if added:
                self._log.info("registry versions now served", extra={
                    "versions": [b.version.pool for b in added], "counter": state.counter})

    def _start(self, version: ModelVersion) -> _Built | None:
        try:
            replicas = self._build(version.config())
        except (ValueError, OSError, InferLabError, EngineUnavailable):  # the others are served all the same
            self._log.exception("cannot build the pools of a registry version", extra={"version": version.pool})
            return None
        for engine in replicas.engines:
            engine.start()
        return _Built(version, replicas)

    async def _ready(self, added: list[_Built]) -> None:
        engines = [engine for built in added for engine in built.replicas.engines]
        if not engines:
            return
        results = await asyncio.gather(*(engine.wait_ready(self._start_timeout_s) for engine in engines))
        for engine, ready in zip(engines, results, strict=True):
            if not ready:
                self._log.error("a registry version's engine is not ready; its pool is served anyway and "
                                "answers 503 until it is", extra={"engine": engine.name})

    def _serve(self, built: _Built) -> None:
        for model in built.replicas.models:
            self._queues.set_policy(model.pool.model, queue_policy(model.model))
            for pool in model.pools():
                self._health.add_pool(pool, health_policy(model.model))
                self._scraper.add_pool(pool)
            self._router.add(model.pool, model.embeddings)

    async def _drain(self, built: _Built) -> None:
        pool = built.version.pool
        changed = asyncio.Event()
        for each in built.pools:
            each.subscribe(lambda _: changed.set())  # a slot freed
        self._resolver.watchers.add(changed)  # a call holding the pool ended
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._drain_s):
                    while self._resolver.holding.get(pool, 0) > 0 or any(
                            r.in_flight for p in built.pools for r in p.replicas):
                        changed.clear()
                        await changed.wait()
        finally:
            self._resolver.watchers.discard(changed)
        self._router.remove(pool)
        for each in built.pools:
            self._health.remove_pool(each)
            self._scraper.remove_pool(each)
            self._queues.forget(each)
        for engine in built.replicas.engines:
            await engine.stop()
        self._retiring.remove(built)
        self._log.info("registry version drained and stopped", extra={"version": pool})

    async def stop(self) -> None:
        """Stop every engine this hot reload started (gateway shutdown)."""
        for task in list(self._draining):
            task.cancel()
        for task in list(self._draining):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for built in [*self.built.values(), *self._retiring]:
            for engine in built.replicas.engines:
                await engine.stop()
        self.built.clear()
        self._retiring.clear()
