"""The autoscaler on a real pool and queue: scale from zero holds requests in the queue until the
replica it starts is ready; the activation bound answers 503 ``cold_start_timeout``; scale-down
cordons, drains and only then stops; advisory mode changes nothing; the Kubernetes actuator against
the scale subresource (``KubeScaleSimulator``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Self

import aiohttp
import pytest

from inferlab.autoscale.decision import ScaleDecider, ScalePolicy
from inferlab.autoscale.kubernetes import KubernetesActuator
from inferlab.autoscale.local import Engine, LocalActuator
from inferlab.autoscale.service import Autoscaler, PoolAutoscaler
from inferlab.autoscale.signals import PoolSignals
from inferlab.router import BackendPool, Replica
from inferlab.router.pool import NoReplicaAvailable
from inferlab.router.protocol import RoutingRequest
from inferlab.router.replica import Outcome
from inferlab.scheduler.protocol import ColdStartTimeout
from inferlab.scheduler.queue import WaitQueues
from inferlab.testing.kube_scale import KubeScaleSimulator
from tests.unit.router.fakes import FakeBackend


class SlowEngine:
    """An engine that takes ``startup_s`` to answer its health check (``never``: it does not)."""

    def __init__(self, startup_s: float, never: bool = False) -> None:
        self.startup_s, self.never = startup_s, never
        self.started = self.stopped = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self.started += 1
        self._task = asyncio.create_task(self._boot())

    async def _boot(self) -> None:
        await asyncio.sleep(self.startup_s)
        if not self.never:
            self._ready.set()

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self.stopped += 1
        if self._task is not None:
            self._task.cancel()


class Harness:
    def __init__(self, policy: ScalePolicy, *, startup_s: float = 0.2, never: bool = False, mode: str = "active",
                 initial: int = 0, activation_timeout_s: float = 5.0) -> None:
        self.engines: dict[str, SlowEngine] = {}
        initial_replicas = [Replica(FakeBackend(f"m-{i}"), limit=2) for i in range(initial)]
        self.pool = BackendPool("m", initial_replicas, allow_empty=True)
        self.queues = WaitQueues()
        self.startup_s, self.never = startup_s, never

        def factory(name: str) -> tuple[Replica, Engine]:
            engine = self.engines[name] = SlowEngine(self.startup_s, self.never)
            return Replica(FakeBackend(name), limit=2), engine

        initial_engines: dict[str, Engine] = {}
        for replica in initial_replicas:
            initial_engines[replica.name] = self.engines[replica.name] = SlowEngine(0)
        self.actuator = LocalActuator(self.pool, factory, startup_timeout_s=2.0, drain_timeout_s=10.0,
                                      engines=initial_engines)
        signals = PoolSignals(self.pool, lambda: self.queues.queue(self.pool).depth)
        self.scaler = PoolAutoscaler(self.pool, ScaleDecider(policy), signals, self.actuator, mode=mode,  # type: ignore[arg-type]
                                     activation_timeout_s=activation_timeout_s, logger=logging.getLogger("test"))
        self.loop = Autoscaler([self.scaler], interval_s=0.05)
        self.scaler._wake = self.loop.wake

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self.loop.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.loop.close()


ZERO = ScalePolicy(target=2, min_replicas=0, max_replicas=3, stable_window_s=2, panic_window_s=0.5,
                   scale_down_delay_s=0.1, idle_s=0.3)


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_request_to_a_pool_at_zero_waits_for_the_replica_it_wakes() -> None:
    async with Harness(ZERO, startup_s=0.3) as h:
        assert h.pool.is_ready() and not h.pool.replicas  # at zero by design: ready (standby)
        started = time.monotonic()
        lease = await h.queues.acquire(h.pool, RoutingRequest({}))
        waited = time.monotonic() - started
        assert 0.3 <= waited < 0.3 + 0.5
        assert lease.replica.name == "m-as1" and len(h.engines) == 1
        h.pool.release(lease, Outcome.SUCCESS)
        await until(lambda: h.actuator.replicas() == 0 and not h.pool.replicas, 5)  # idle again: back to zero
        assert h.engines["m-as1"].stopped == 1


async def test_many_requests_at_zero_wake_one_replica_per_need_and_all_are_served() -> None:
    async with Harness(ZERO, startup_s=0.2) as h:
        leases = await asyncio.gather(*(h.queues.acquire(h.pool, RoutingRequest({})) for _ in range(6)))
        assert len(leases) == 6 and 1 <= len(h.engines) <= 3
        for lease in leases:
            h.pool.release(lease, Outcome.SUCCESS)


async def test_the_activation_bound_answers_503_cold_start_timeout() -> None:
    async with Harness(ZERO, never=True, activation_timeout_s=0.3) as h:
        with pytest.raises(ColdStartTimeout) as refused:
            await h.queues.acquire(h.pool, RoutingRequest({}))
        assert refused.value.status == 503 and refused.value.code == "cold_start_timeout"
        await until(lambda: not h.actuator.can_start(), 5)  # the engine gave up at its start-up timeout
        assert not h.pool.is_ready()  # a pool at zero that cannot wake is not "ready" (standby)


async def test_scale_down_cordons_drains_then_stops() -> None:
    policy = ScalePolicy(target=4, min_replicas=1, max_replicas=3, stable_window_s=1, panic_window_s=0.2,
                         scale_down_delay_s=0.1)  # 3 requests in flight, one per replica: 2 replicas would do
    async with Harness(policy, initial=3) as h:
        held = [h.pool.try_acquire(RoutingRequest({})) for _ in range(3)]
        assert all(lease is not None for lease in held)
        await until(lambda: any(r.cordoned for r in h.pool.replicas), 5)
        cordoned = [r for r in h.pool.replicas if r.cordoned]
        busy = [r for r in cordoned if r.in_flight]
        assert busy, "a replica with a request in flight is cordoned, not stopped"
        for _ in range(5):  # new requests go to the others only
            lease = h.pool.try_acquire(RoutingRequest({}))
            assert lease is None or not lease.replica.cordoned
            if lease is not None:
                h.pool.release(lease, Outcome.SUCCESS)
        await asyncio.sleep(0.3)
        assert all(h.engines[r.name].stopped == 0 for r in busy)  # still draining
        for lease in held:
            assert lease is not None
            h.pool.release(lease, Outcome.SUCCESS)
        await until(lambda: len(h.pool.replicas) == 1, 5)  # idle now: down to the minimum
        assert sum(engine.stopped for engine in h.engines.values()) == 2


async def test_advisory_mode_logs_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "test")
    async with Harness(ZERO, mode="advisory", initial=1) as h:
        held = [h.pool.try_acquire(RoutingRequest({})) for _ in range(2)]
        await until(lambda: any(d.direction == "up" for d in h.scaler.history), 5)
        assert h.actuator.replicas() == 1 and not h.engines.keys() - {"m-0"}
        assert h.pool.activator is None  # advisory: no cold-start holding either
        for lease in held:
            assert lease is not None
            h.pool.release(lease, Outcome.SUCCESS)
    logged = [r for r in caplog.records if r.getMessage() == "autoscale decision"]
    assert logged and all(r.mode == "advisory" for r in logged)  # type: ignore[attr-defined]
    assert any(r.direction == "up" and "load" in r.inputs for r in logged)  # type: ignore[attr-defined]


async def test_without_an_activator_an_empty_pool_fails_at_once() -> None:
    pool = BackendPool("m", [], allow_empty=True)
    with pytest.raises(NoReplicaAvailable):
        await WaitQueues().acquire(pool, RoutingRequest({}))
    assert not pool.is_ready()


async def test_kubernetes_actuator_patches_the_scale_subresource() -> None:
    async with KubeScaleSimulator(token="t0ken", ready_delay_s=0.1) as api, aiohttp.ClientSession() as session:
        api.add("lab", "engines", replicas=1)
        assert api.base_url is not None
        actuator = KubernetesActuator(session, api.base_url, "lab", "engines", token="t0ken")
        await actuator.refresh()
        assert (actuator.replicas(), actuator.ready()) == (1, 1)
        await actuator.scale(3)
        assert actuator.replicas() == 3 and actuator.ready() == 1
        await asyncio.sleep(0.2)
        await actuator.refresh()
        assert actuator.ready() == 3
        assert ("PATCH", "/apis/apps/v1/namespaces/lab/deployments/engines/scale",
                {"spec": {"replicas": 3}}) in api.requests
        missing = KubernetesActuator(session, api.base_url, "lab", "nope", token="t0ken")
        await missing.scale(2)
        assert missing.last_error is not None and "404" in missing.last_error
        unauthorised = KubernetesActuator(session, api.base_url, "lab", "engines", token="wrong")
        await unauthorised.refresh()
        assert unauthorised.last_error is not None and "401" in unauthorised.last_error
