"""The group supervisor with real child processes (engine simulators as ranks: a worker that
listens, a leader with /health), through the local provider: order, drain, restart, events."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from inferlab.coordinator.group import EngineGroup, GroupState, GroupTiming
from inferlab.coordinator.local import LocalProvider
from inferlab.coordinator.provider import PlacementShortfall
from inferlab.coordinator.spec import GroupPlan, RankSpec

SRC = str(Path(__file__).resolve().parents[3] / "src")


class Recorder:
    def __init__(self) -> None:
        self.states: list[str] = []
        self.restarts = 0
        self.recoveries: list[float] = []

    def group_changed(self, group: str, state: str) -> None:
        self.states.append(state)

    def group_restarted(self, group: str) -> None:
        self.restarts += 1

    def group_recovered(self, group: str, seconds: float) -> None:
        self.recoveries.append(seconds)


def _plan(workers: int) -> GroupPlan:
    argv = (sys.executable, "-m", "inferlab.testing.simulator", "--host", "{host}", "--port", "{port}")
    env = (("PYTHONPATH", SRC),)
    ranks = [RankSpec(i, "worker", argv, "tcp", env=env) for i in range(1, workers + 1)]
    # the leader is told its workers' addresses: the simulator ignores --model's value, so it carries them
    leader = RankSpec(0, "leader", (*argv, "--model", "{rpc}"), "http", "/health", env)
    return GroupPlan("g", "llama.cpp", (*ranks, leader))


@pytest.fixture
async def group() -> AsyncIterator[tuple[EngineGroup, Recorder]]:
    recorder = Recorder()
    async with aiohttp.ClientSession() as session:
        group = EngineGroup(_plan(2), LocalProvider(logging.getLogger("test")), session,
                            timing=GroupTiming(startup_timeout_s=30, backoff_initial_s=0.1, health_interval_s=0.2),
                            observer=recorder, logger=logging.getLogger("test"))
        group.start()
        yield group, recorder
        await group.stop()


async def test_workers_start_before_a_leader_that_knows_their_addresses(group: tuple[EngineGroup, Recorder]) -> None:
    engine, recorder = group
    assert await engine.wait_ready(30)
    report = engine.snapshot()
    workers = [rank for rank in report["ranks"] if rank["role"] == "worker"]
    assert [rank["role"] for rank in report["ranks"]] == ["worker", "worker", "leader"]
    leader_pid = report["ranks"][-1]["pid"]
    cmdline = (await asyncio.to_thread(Path(f"/proc/{leader_pid}/cmdline").read_bytes)).split(b"\0")
    assert cmdline[cmdline.index(b"--model") + 1].decode() == ",".join(f"127.0.0.1:{w['port']}" for w in workers)
    assert recorder.states == ["placing", "starting", "ready"]
    assert engine.url == f"http://127.0.0.1:{report['ranks'][-1]['port']}"


async def test_a_dead_worker_takes_the_whole_group_down_and_back(group: tuple[EngineGroup, Recorder]) -> None:
    engine, recorder = group
    assert await engine.wait_ready(30)
    before = engine.snapshot()
    url = engine.url
    os.kill(before["ranks"][0]["pid"], signal.SIGKILL)
    for _ in range(50):
        if not engine.is_ready():
            break
        await asyncio.sleep(0.01)
    assert not engine.is_ready(), "drained within half a second"
    assert await engine.wait_ready(30)
    after = engine.snapshot()
    assert engine.restarts == recorder.restarts == 1
    assert recorder.states == ["placing", "starting", "ready", "draining", "restarting", "placing", "starting", "ready"]
    assert "worker rank 1 on local died (exit code -9)" in after["last_error"]
    assert {r["pid"] for r in after["ranks"]}.isdisjoint({r["pid"] for r in before["ranks"]})  # restarted whole
    assert engine.url == url and [r["port"] for r in after["ranks"]] == [r["port"] for r in before["ranks"]]
    assert len(recorder.recoveries) == 1 and 0 < recorder.recoveries[0] < 30


async def test_a_worker_that_cannot_start_is_retried_with_backoff() -> None:
    recorder = Recorder()
    plan = GroupPlan("bad", "llama.cpp", (RankSpec(1, "worker", (sys.executable, "-c", "raise SystemExit(3)"), "tcp"),
                                          RankSpec(0, "leader", (sys.executable, "-c", "pass"), "http")))
    async with aiohttp.ClientSession() as session:
        engine = EngineGroup(plan, LocalProvider(logging.getLogger("test")), session,
                             timing=GroupTiming(startup_timeout_s=5, backoff_initial_s=0.05, backoff_max_s=0.2),
                             observer=recorder, logger=logging.getLogger("test"))
        engine.start()
        await asyncio.sleep(1.0)
        await engine.stop()
    assert not engine.is_ready() and engine.restarts >= 3
    assert "worker rank 1 exited while starting" in engine.last_error
    assert engine.state is GroupState.STOPPED


class ScarceProvider(LocalProvider):
    """The local provider on a cluster that has no room for the first ``refusals`` placements."""

    def __init__(self, refusals: int) -> None:
        super().__init__(logging.getLogger("test"))
        self.refusals = refusals

    async def place(self, plan: GroupPlan, timeout_s: float):  # type: ignore[no-untyped-def]
        if self.refusals:
            self.refusals -= 1
            raise PlacementShortfall("no room for 3 ranks [{'CPU': 1.0}, ...] (spread); alive nodes: {}")
        return await super().place(plan, timeout_s)


async def test_a_shortfall_is_reported_then_retried_until_there_is_room() -> None:
    recorder = Recorder()
    async with aiohttp.ClientSession() as session:
        engine = EngineGroup(_plan(1), ScarceProvider(refusals=2), session,
                             timing=GroupTiming(startup_timeout_s=30, backoff_initial_s=0.05),
                             observer=recorder, logger=logging.getLogger("test"))
        engine.start()
        try:
            assert await engine.wait_ready(30)
        finally:
            await engine.stop()
    shortfalls = [event for event in engine.snapshot()["events"] if event["to"] == "shortfall"]
    assert len(shortfalls) == 2 and "no room for 3 ranks" in shortfalls[0]["reason"]
    assert recorder.states[:4] == ["placing", "shortfall", "placing", "shortfall"]
    assert recorder.states[4:] == ["placing", "starting", "ready", "stopped"]
    assert engine.restarts == 2  # each shortfall is a failed attempt, on the same backoff
