"""``LocalActuator``: replicas as engine processes of this gateway (the coordinator's local provider).

Up: a new managed engine is started; its replica joins the pool once the engine answers its
health check, and the pool's waiters (requests held while the pool was at zero) are served at
once. Down: the replica is *cordoned* (the router stops picking it), its in-flight requests finish
(at most ``drain_timeout_s``), then it leaves the pool and its engine is stopped — no request is
cut. A replica still draining when load comes back is uncordoned instead of starting a new one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from inferlab.router.pool import BackendPool
from inferlab.router.replica import Replica

DRAIN_POLL_S = 0.05


class Engine(Protocol):
    """A supervised engine process (``coordinator.ManagedEngine``)."""

    def start(self) -> None: ...

    async def wait_ready(self, timeout: float) -> bool: ...

    async def stop(self) -> None: ...


ReplicaFactory = Callable[[str], tuple[Replica, Engine]]
"""A new replica named so, and the engine behind it (not started)."""


@dataclass
class StartRecord:
    replica: str
    ready_s: float | None  # from the start of the process to its first healthy answer; None: it failed
    at: float


class LocalActuator:
    name = "local"

    def __init__(self, pool: BackendPool, factory: ReplicaFactory, *, startup_timeout_s: float = 120.0,
                 drain_timeout_s: float = 600.0, logger: logging.Logger | None = None,
                 engines: dict[str, Engine] | None = None) -> None:
        """``engines``: the engines behind the pool's replicas at start, by replica name (they are
        scaled like the ones this actuator starts)."""
        self.pool = pool
        self._factory = factory
        self._startup_timeout_s = startup_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._log = logger or logging.getLogger("inferlab.autoscale")
        self._engines: dict[str, Engine] = dict(engines or {})
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._names = itertools.count(1)
        self.starts: deque[StartRecord] = deque(maxlen=100)
        self.last_start_failed = False

    def _serving(self) -> list[Replica]:
        return [replica for replica in self.pool.replicas if not replica.cordoned]

    def replicas(self) -> int:
        return len(self._serving()) + len(self._starting)

    def ready(self) -> int:
        now = self.pool.clock()
        return sum(1 for replica in self._serving() if replica.routable(now))

    def starting(self) -> int:
        return len(self._starting)

    def can_start(self) -> bool:
        return not self.last_start_failed

    async def refresh(self) -> None:
        return None

    async def scale(self, desired: int) -> None:
        have = self.replicas()
        if desired > have:
            self._up(desired - have)
        elif desired < have:
            self._down(have - desired)

    def _up(self, count: int) -> None:
        for replica in [r for r in self.pool.replicas if r.cordoned][:count]:  # revive draining ones first
            replica.cordoned = False
            self._log.info("replica uncordoned", extra={"model": self.pool.model, "replica": replica.name})
            self.pool.capacity_changed()
            count -= 1
        for _ in range(count):
            name = self._new_name()
            replica, engine = self._factory(name)
            self._engines[name] = engine
            self._starting[name] = asyncio.create_task(self._start(replica, engine), name=f"autoscale-start-{name}")

    def _new_name(self) -> str:
        taken = {replica.name for replica in self.pool.replicas} | set(self._starting) | set(self._engines)
        while (name := f"{self.pool.model}-as{next(self._names)}") in taken:
            pass
        return name

    def _down(self, count: int) -> None:
        for name in list(self._starting)[::-1][:count]:  # the newest starts are the cheapest to give up
            self._starting.pop(name).cancel()
            count -= 1
        serving = sorted(self._serving(), key=lambda r: (r.in_flight, -self.pool.replicas.index(r)))
        for replica in serving[:count]:
            replica.cordoned = True
            self.pool.capacity_changed()
            self._log.info("replica cordoned", extra={"model": self.pool.model, "replica": replica.name,
                                                      "in_flight": replica.in_flight})
            if replica.name not in self._draining:
                self._draining[replica.name] = asyncio.create_task(self._drain(replica),
                                                                   name=f"autoscale-drain-{replica.name}")

    async def _start(self, replica: Replica, engine: Engine) -> None:
        started = time.monotonic()
        engine.start()
        ok = False
        try:
            ok = await engine.wait_ready(self._startup_timeout_s)
        finally:
            self._starting.pop(replica.name, None)
            if not ok:
                self._engines.pop(replica.name, None)
                await engine.stop()
        self.last_start_failed = not ok
        if not ok:
            self.starts.append(StartRecord(replica.name, None, time.time()))
            self._log.error("replica did not become ready", extra={"model": self.pool.model, "replica": replica.name})
            return
        ready_s = time.monotonic() - started
        self.starts.append(StartRecord(replica.name, ready_s, time.time()))
        self.pool.add_replica(replica)
        self._log.info("replica added", extra={"model": self.pool.model, "replica": replica.name,
                                               "ready_s": round(ready_s, 3)})

    async def _drain(self, replica: Replica) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        try:
            while replica.in_flight > 0 and time.monotonic() < deadline:
                await asyncio.sleep(DRAIN_POLL_S)
                if not replica.cordoned:
                    return  # revived
            if not replica.cordoned:
                return
            self.pool.remove_replica(replica.name)
            engine = self._engines.pop(replica.name, None)
            self._log.info("replica drained and stopped", extra={"model": self.pool.model, "replica": replica.name,
                                                                  "in_flight": replica.in_flight})
            if engine is not None:
                await engine.stop()
        finally:
            self._draining.pop(replica.name, None)

    async def close(self) -> None:
        tasks = [*self._starting.values(), *self._draining.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in list(self._engines.values()):
            await engine.stop()
        self._engines.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"actuator": self.name, "starting": sorted(self._starting), "draining": sorted(self._draining),
                "recent_starts": [{"replica": s.replica, "ready_s": None if s.ready_s is None else round(s.ready_s, 3)}
                                  for s in list(self.starts)[-5:]]}
