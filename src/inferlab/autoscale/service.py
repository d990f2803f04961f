"""``Autoscaler``: every ``interval_s`` (and at once when a request finds a pool at zero), each
pool's signals are read, the decision taken (``decision.py``), logged with its inputs, and — in
``active`` mode — handed to the pool's actuator.

``PoolAutoscaler`` is also the pool's ``Activator`` (``router.pool``): while the pool may go to
zero, a request that finds no routable replica wakes the loop and waits in the queue for the
replica it starts, rather than failing (``activation_timeout_s`` bounds the wait, then 503
``cold_start_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from inferlab.autoscale.actuator import Actuator
from inferlab.autoscale.decision import Decision, Sample, ScaleDecider
from inferlab.autoscale.signals import PoolSignals
from inferlab.router.pool import BackendPool

Mode = Literal["active", "advisory"]


class AutoscaleObserver(Protocol):
    def autoscale_decided(self, model: str, desired: int, actual: int, direction: str, panicking: bool) -> None: ...


class NullAutoscaleObserver:
    def autoscale_decided(self, model: str, desired: int, actual: int, direction: str, panicking: bool) -> None:
        pass


class PoolAutoscaler:
    """One pool: its decider, signals and actuator, its decision history; its cold-start activator."""

    def __init__(self, pool: BackendPool, decider: ScaleDecider, signals: PoolSignals, actuator: Actuator, *,
                 mode: Mode = "active", bounds: Callable[[], tuple[int, int]] | None = None,
                 activation_timeout_s: float = 120.0, history: int = 50,
                 observer: AutoscaleObserver | None = None, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic, wake: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.decider = decider
        self.signals = signals
        self.actuator = actuator
        self.mode: Mode = mode
        policy = decider.policy
        self._bounds = bounds or (lambda: (policy.min_replicas, policy.max_replicas))
        self.timeout_s = activation_timeout_s
        self.history: deque[Decision] = deque(maxlen=history)
        self._observer: AutoscaleObserver = observer or NullAutoscaleObserver()
        self._log = logger or logging.getLogger("inferlab.autoscale")
        self._clock = clock
        self._wake = wake
        self.last_request_at: float | None = clock()  # the start counts as activity: no instant scale to zero
        self._activations = 0  # requests that found the pool at zero since the last decision
        self.desired: int | None = None
        self._cold_since: float | None = None  # when a request first found the pool at zero
        self.cold_starts: deque[float] = deque(maxlen=history)  # how long those first requests were held
        self.cold_starts_total = 0
        if mode == "active" and policy.min_replicas == 0:
            pool.activator = self
            pool.subscribe(self._capacity_changed)

    # -- Activator ------------------------------------------------------------------------------

    def activate(self, pool: BackendPool) -> bool:
        self.last_request_at = self._clock()
        self._activations += 1
        if self._cold_since is None:
            self._cold_since = self.last_request_at
        if self.actuator.replicas() == 0:
            self._wake()  # decide now rather than at the next tick
        return True

    def _capacity_changed(self, pool: BackendPool) -> None:
        """A replica joined (or a slot freed): the requests held since the pool was cold are served now."""
        if self._cold_since is not None and pool.free_slots():
            self.cold_starts.append(self._clock() - self._cold_since)
            self.cold_starts_total += 1
            self._cold_since = None

    def standby(self, pool: BackendPool) -> bool:
        """At zero by design and able to wake: its last start did not fail."""
        return self._bounds()[0] == 0 and self.actuator.can_start()

    # -- deciding -------------------------------------------------------------------------------

    async def tick(self) -> Decision:
        await self.actuator.refresh()
        now = self._clock()
        reading = self.signals.read()
        if reading.active:
            self.last_request_at = now
        load = reading.load
        if self._activations and self.actuator.replicas() == 0:
            load = max(load, 1.0)  # a request woke the pool (it is in the queue, counted there, by now)
        self._activations = 0
        current = self.actuator.replicas()
        sample = Sample(now, load, current, reading.pressure, self.last_request_at, self._bounds(), reading.signals)
        decision = self.decider.decide(sample)
        self.history.append(decision)
        self.desired = decision.desired
        self._observer.autoscale_decided(self.pool.model, decision.desired, self.actuator.ready(), decision.direction,
                                         decision.panicking)
        if decision.direction != "hold" or reading.active:
            level = logging.INFO if decision.direction != "hold" else logging.DEBUG
            self._log.log(level, "autoscale decision", extra={
                "model": self.pool.model, "mode": self.mode, **decision.to_dict()})
        if self.mode == "active" and decision.desired != current:
            await self.actuator.scale(decision.desired)
        return decision

    def snapshot(self) -> dict[str, Any]:
        policy = self.decider.policy
        low, high = self._bounds()
        return {
            "model": self.pool.model, "mode": self.mode, "current": self.actuator.replicas(),
            "ready": self.actuator.ready(), "desired": self.desired, "min_replicas": low, "max_replicas": high,
            "standby": self.standby(self.pool) and self.actuator.replicas() == 0,
            "policy": {"target": policy.target, "stable_window_s": policy.stable_window_s,
                       "panic_window_s": policy.panic_window_s, "panic_threshold": policy.panic_threshold,
                       "tolerance": policy.tolerance, "scale_down_delay_s": policy.scale_down_delay_s,
                       "headroom": policy.headroom, "idle_s": policy.idle_s},
            **self.actuator.snapshot(),
            "cold_starts_total": self.cold_starts_total,
            "cold_starts_s": [round(held, 3) for held in list(self.cold_starts)[-10:]],
            "decisions": [decision.to_dict() for decision in reversed(self.history)],
        }


class Autoscaler:
    """Runs every pool's decisions, in one background task."""

    def __init__(self, pools: Sequence[PoolAutoscaler], *, interval_s: float = 2.0, mode: Mode = "active",
                 logger: logging.Logger | None = None) -> None:
        self.pools = list(pools)
        self.interval_s = interval_s
        self.mode: Mode = mode
        self._log = logger or logging.getLogger("inferlab.autoscale")
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def tick(self) -> list[Decision]:
        return [await pool.tick() for pool in self.pools]

    async def run(self) -> None:
        while True:
            self._woken.clear()
            for pool in self.pools:
                try:
                    await pool.tick()
                except Exception:  # noqa: BLE001 — one pool's failure (an engine that cannot start) must not stop the others
                    self._log.exception("autoscale decision failed", extra={"model": pool.pool.model})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.interval_s)

    async def close(self) -> None:
        for pool in self.pools:
            await pool.actuator.close()

    def snapshot(self) -> dict[str, Any]:
        return {"object": "autoscaler", "enabled": True, "mode": self.mode, "interval_s": self.interval_s,
                "data": [pool.snapshot() for pool in self.pools]}
