"""``EngineGroup``: one copy of an engine as the ranks that hold it, supervised as a whole.

A group is not half-alive. It starts its workers, waits until each listens, starts the leader with
their addresses, and is READY once the leader answers its health check. From then on the first
rank to die, or a leader that stops answering, makes it DRAINING: it leaves the pool at once (not
routable; the pool's waiters go to other replicas), its remaining ranks are stopped (so requests
still on the leader end now: a stream with one error event, a request without a byte yet fails
over), its room is given back, and after a backoff it is placed and started again whole, then
probed back in. A placement that finds no room is a SHORTFALL, reported and retried on the same
backoff. Every transition is a log event, a metric and a line in the group's recent history.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from inferlab.coordinator.provider import EngineProvider, Placement, PlacementShortfall, RankProcess
from inferlab.coordinator.ranks import wait_http, wait_tcp
from inferlab.coordinator.spec import GroupPlan, RankSpec

STOP_GRACE_S = 10.0  # a gateway that stops lets its engines finish what they are doing
DRAIN_GRACE_S = 0.5  # a group with a dead rank cannot finish anything: its ranks are killed
STABLE_AFTER_S = 60.0  # a group that served this long starts its next backoff from the beginning
HISTORY = 20


class GroupState(str, enum.Enum):
    PENDING = "pending"
    PLACING = "placing"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    RESTARTING = "restarting"
    SHORTFALL = "shortfall"
    STOPPED = "stopped"


class GroupObserver(Protocol):
    """Where transitions go besides the log (``GatewayMetrics`` implements it)."""

    def group_changed(self, group: str, state: str) -> None: ...

    def group_restarted(self, group: str) -> None: ...

    def group_recovered(self, group: str, seconds: float) -> None: ...


class NullGroupObserver:
    def group_changed(self, group: str, state: str) -> None:
        pass

    def group_restarted(self, group: str) -> None:
        pass

    def group_recovered(self, group: str, seconds: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class GroupTiming:
    startup_timeout_s: float = 120.0
    placement_timeout_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    health_interval_s: float = 1.0
    health_failures: int = 3  # consecutive failed leader checks that count as a dead rank


class EngineGroup:
    """Supervises one group's ranks through ``provider``; ``url`` is the leader's while READY."""

    def __init__(self, plan: GroupPlan, provider: EngineProvider, session: aiohttp.ClientSession, *,
                 timing: GroupTiming, observer: GroupObserver, logger: logging.Logger) -> None:
        self.plan = plan
        self.name = plan.name
        self.provider = provider
        self.state = GroupState.PENDING
        self.restarts = 0
        self.last_error = ""
        self.url = ""
        self._session = session
        self._timing = timing
        self._observer = observer
        self._log = logger
        self._listeners: list[Callable[[EngineGroup], None]] = []
        self._ranks: list[tuple[RankSpec, RankProcess]] = []  # started so far: workers, then the leader
        self._placement: Placement | None = None
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._down_since: float | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._auth = {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}

    # -- what the pool and the admin view read ------------------------------------------------

    def is_ready(self) -> bool:
        return self.state is GroupState.READY

    @property
    def pid(self) -> int | None:
        leader = [rank for spec, rank in self._ranks if spec.role == "leader"]
        return leader[0].pid if leader else None

    @property
    def api_key(self) -> str | None:
        return self.plan.api_key

    def snapshot(self) -> dict[str, Any]:
        ranks = [
            {"index": spec.index, "role": spec.role, "node": rank.node_id, "host": rank.host, "port": rank.port,
             "pid": rank.pid}
            for spec, rank in self._ranks
        ]
        return {
            "name": self.name, "engine": self.plan.engine, "provider": self.provider.name,
            "state": self.state.value, "url": self.url or None, "restarts": self.restarts,
            "last_error": self.last_error or None, "placement": self.plan.placement,
            "nodes": sorted({rank["node"] for rank in ranks}), "ranks": ranks, "events": list(self._history),
        }

    def subscribe(self, listener: Callable[[EngineGroup], None]) -> None:
        """Call ``listener(group)`` after every transition (the pool re-routes; the replica's endpoint moves)."""
        self._listeners.append(listener)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name=f"group-{self.name}")

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._teardown(STOP_GRACE_S)
        self._transition(GroupState.STOPPED, "stopped")

    def _transition(self, state: GroupState, reason: str) -> None:
        if state is self.state and state is not GroupState.SHORTFALL:
            return
        previous, self.state = self.state, state
        now = time.time()
        self._history.append({"at": round(now, 3), "from": previous.value, "to": state.value, "reason": reason})
        level = logging.WARNING if state in (GroupState.DRAINING, GroupState.SHORTFALL) else logging.INFO
        self._log.log(level, "engine group transition", extra={
            "group": self.name, "from": previous.value, "to": state.value, "reason": reason})
        self._observer.group_changed(self.name, state.value)
        if state is GroupState.READY:
            self._ready.set()
            if self._down_since is not None:
                self._observer.group_recovered(self.name, time.monotonic() - self._down_since)
                self._down_since = None
        else:
            self._ready.clear()
            if self._down_since is None and previous is GroupState.READY:
                self._down_since = time.monotonic()
        for listener in self._listeners:
            listener(self)

    # -- supervision -----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = self._timing.backoff_initial_s
        while not self._stopping:
            started = time.monotonic()
            reason = await self._run_once()
            await self._teardown(DRAIN_GRACE_S)
            if self._stopping:
                break
            self.last_error = reason
            self.restarts += 1
            self._observer.group_restarted(self.name)
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff = self._timing.backoff_initial_s
            if self.state is not GroupState.SHORTFALL:
                self._transition(GroupState.RESTARTING, f"restart in {backoff:g}s: {reason}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._timing.backoff_max_s)

    async def _run_once(self) -> str:
        """Place, start and serve until a rank dies; return why the group went down."""
        self._transition(GroupState.PLACING, "placing the group")
        try:
            self._placement = await self.provider.place(self.plan, self._timing.placement_timeout_s)
        except PlacementShortfall as exc:
            self._transition(GroupState.SHORTFALL, str(exc))
            return f"shortfall: {exc}"
        self._transition(GroupState.STARTING, "starting ranks on " + ", ".join(
            sorted({slot.node_id for slot in self._placement.slots})))
        try:
            async with asyncio.timeout(self._timing.startup_timeout_s):
                failed = await self._start_ranks()
        except TimeoutError:
            failed = f"not ready within {self._timing.startup_timeout_s:g}s"
        except OSError as exc:
            failed = f"cannot start a rank: {exc}"
        if failed:
            self._transition(GroupState.DRAINING, failed)
            return failed
        self._transition(GroupState.READY, "every rank up; the leader answers")
        reason = await self._watch()
        self._transition(GroupState.DRAINING, reason)
        return reason

    async def _start_ranks(self) -> str:
        """Workers first (each must listen), then the leader with their addresses; '' when all are up."""
        assert self._placement is not None
        slots = dict(zip((rank.index for rank in self.plan.ranks), self._placement.slots, strict=True))
        base = {"leader_host": slots[self.plan.leader.index].host}
        for spec in self.plan.workers:
            self._ranks.append((spec, await self.provider.spawn(self.plan, spec, slots[spec.index], base)))
        for spec, rank in list(self._ranks):
            if spec.readiness == "tcp" and not await self._until_up(wait_tcp(rank.host, rank.port)):
                return f"worker rank {spec.index} exited while starting: " + " | ".join(rank.tail()[-3:])
        values = {**base, "rpc": ",".join(f"{rank.host}:{rank.port}" for _, rank in self._ranks)}
        leader_spec = self.plan.leader
        leader = await self.provider.spawn(self.plan, leader_spec, slots[leader_spec.index], values)
        self._ranks.append((leader_spec, leader))
        url = f"http://{leader.host}:{leader.port}"
        probe = wait_http(self._session, url + leader_spec.health_path, self._auth)
        if not await self._until_up(probe):
            return "the leader exited while starting: " + " | ".join(leader.tail()[-3:])
        self.url = url
        return ""

    async def _until_up(self, probe: Coroutine[Any, Any, None]) -> bool:
        """Run ``probe`` until it succeeds (True) or any rank of the group dies first (False)."""
        probing = asyncio.ensure_future(probe)
        deaths = [asyncio.ensure_future(rank.wait()) for _, rank in self._ranks]
        try:
            done, _ = await asyncio.wait([probing, *deaths], return_when=asyncio.FIRST_COMPLETED)
            return probing in done and not any(d in done for d in deaths)
        finally:
            for task in (probing, *deaths):
                task.cancel()
            await asyncio.gather(probing, *deaths, return_exceptions=True)

    async def _watch(self) -> str:
        """Until the first rank dies or the leader fails ``health_failures`` checks in a row."""
        deaths = {asyncio.ensure_future(rank.wait()): (spec, rank) for spec, rank in self._ranks}
        health = asyncio.ensure_future(self._leader_health())
        try:
            done, _ = await asyncio.wait([*deaths, health], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is health:
                    return health.result()
                spec, rank = deaths[task]
                return f"{spec.role} rank {spec.index} on {rank.node_id} died ({task.result()})"
            return "unknown"
        finally:
            for task in (*deaths, health):
                task.cancel()
            await asyncio.gather(*deaths, health, return_exceptions=True)

    async def _leader_health(self) -> str:
        failures = 0
        url = self.url + self.plan.leader.health_path
        timeout = aiohttp.ClientTimeout(total=max(1.0, self._timing.health_interval_s * 2))
        while True:
            await asyncio.sleep(self._timing.health_interval_s)
            try:
                async with self._session.get(url, timeout=timeout, headers=self._auth) as response:
                    healthy = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                healthy = False
            failures = 0 if healthy else failures + 1
            if failures >= self._timing.health_failures:
                return f"the leader failed {failures} health checks in a row"

    async def _teardown(self, grace_s: float) -> None:
        """Stop every rank (leader first: it holds the clients' connections), give the room back."""
        ranks, self._ranks = self._ranks, []
        for _, rank in reversed(ranks):
            await rank.stop(grace_s)
        placement, self._placement = self._placement, None
        if placement is not None:
            await self.provider.release(placement)
