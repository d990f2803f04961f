"""The whole path in one gateway: streamed requests through three simulated replicas, usage events
shipped to the store, the gateway's own detector (on its Lifecycle, on the clock: 1-second
intervals) — one replica's time to first token goes up, and ``GET /admin/anomalies`` names it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator
from inferlab.testing._state import SimulatorScript

Client = TestClient[Any, Any]


@pytest.fixture
async def replicas() -> AsyncIterator[list[EngineSimulator]]:
    sims = [EngineSimulator(SimulatorScript(completion_tokens=4, prefill_delay_s=0.01)) for _ in range(3)]
    for sim in sims:
        await sim.start()
    yield sims
    for sim in sims:
        await sim.stop()


async def _load(client: Client, stop: asyncio.Event) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 4}
    while not stop.is_set():
        async with client.post("/v1/chat/completions", json=body) as answer:
            assert answer.status == 200
            await answer.read()


async def test_a_slow_replica_is_named_by_the_gateways_own_detector(replicas: list[EngineSimulator],
                                                                     tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        models=[{"name": "m", "backend": "openai", "urls": [f"{sim.base_url}/v1" for sim in replicas],
                 "served_name": "sim-model"}],
        metering={"ship_interval_s": 0.2},
        anomaly={"enabled": True, "interval_s": 1, "lag_s": 1.5, "season": "none", "min_history": 6, "window": 12,
                 "min_requests": 1, "quiet_intervals": 2, "backfill_s": 0})
    async with TestClient(TestServer(await create_app(settings))) as client:
        stop = asyncio.Event()
        workers = [asyncio.get_running_loop().create_task(_load(client, stop)) for _ in range(6)]
        try:
            await asyncio.sleep(9)  # the series warm up on healthy traffic
            status, body = await _get(client, "/admin/anomalies?state=open")
            assert status == 200 and not [i for i in body["data"] if i["subject"]["scope"] == "replica"]
            replicas[2].script.prefill_delay_s = 0.4  # one replica slows down
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + 12
            while not found and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                status, body = await _get(client, "/admin/anomalies?state=open")
                found = [i for i in body["data"] if i["kind"] == "replica_ttft_ms"]
        finally:
            stop.set()
            for worker in workers:
                with contextlib.suppress(Exception):
                    await worker
    assert len(found) == 1, body
    assert found[0]["subject"] == {"scope": "replica", "name": "m-2", "model": "m"}  # the third of urls
    peak = found[0]["evidence"]["peak"]
    assert peak["value"] > 0 and peak["z"] >= 3.5  # replica_*: its TTFT minus its peers' median, in ms


async def _get(client: Client, path: str) -> tuple[int, Any]:
    answer = await client.get(path)
    return answer.status, await answer.json()
