"""Engine groups on a real two-node Ray cluster on this machine (``ray start --head`` and a second
``ray start --address`` node with its own resources, each on its own loopback address).

Two SmolLM2 groups of a leader and one RPC worker, placed ``spread``: the worker node has room for
one rank, so one group spans both nodes and the other lives on the head. Killing the worker node
(every process of it, at once) drains the spanning group and moves it whole to the head node; the
other group serves every request meanwhile, and the pool never routes to the dead group.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from inferlab.testing.gateway_process import GatewayProcess, free_port
from inferlab.testing.needs import require
from inferlab.testing.ray_cluster import HEAD_IP, LocalRayCluster

pytestmark = pytest.mark.engine
MODEL = "smollm2-ray"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    ray = Path(sys.executable).with_name("ray")
    require(ray.is_file() or shutil.which("ray") is not None, "ray is not installed (pip install 'inferlab[ray]')")
    cluster = LocalRayCluster(ray if ray.is_file() else Path(str(shutil.which("ray"))), port=free_port(),
                              head_cpus=4, worker_cpus=1)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def gateway(cluster: LocalRayCluster, rpc_build: tuple[Path, Path], smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    config = {
        "models": [{"name": MODEL, "backend": "llamacpp", "path": "embedded:smollm2", "context_size": 1024,
                    "parallel": 2, "embeddings": False, "replicas": 2,
                    "distributed": {"provider": "ray", "rpc_workers": 1, "placement": "spread", "cpus_per_rank": 1},
                    "health": {"probe_interval_s": 0.5, "probe_timeout_s": 1.0, "ejection_base_s": 0.5}}],
        "logging": {"level": "INFO"},
        "engines": {"threads": 1, "restart_backoff_initial_s": 0.5, "group_health_interval_s": 0.5,
                    "ray": {"address": cluster.address, "node_ip_address": HEAD_IP, "placement_timeout_s": 15}},
    }
    gateway = GatewayProcess(config, env={"RAY_USAGE_STATS_ENABLED": "0"}).start(timeout=240)
    yield gateway
    gateway.stop()


async def _engines(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/admin/engines") as response:
        return dict(orjson.loads(await response.read()))


async def _replicas(http: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    async with http.get(url + "/admin/backends") as response:
        return {r["name"]: r for r in orjson.loads(await response.read())["data"][0]["replicas"]}


async def _steady(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, outcomes: list[int], i: int) -> None:
    body = {"model": MODEL, "max_tokens": 6, "messages": [{"role": "user", "content": f"Say hi #{i}"}]}
    while not stop.is_set():
        async with http.post(url + "/v1/chat/completions", json=body) as response:
            await response.read()
            outcomes.append(response.status)


async def test_losing_a_node_moves_its_group_to_the_surviving_node(cluster: LocalRayCluster,
                                                                    gateway: GatewayProcess) -> None:
    url = gateway.url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        report = await _engines(http, url)
        (provider,) = report["providers"]
        assert provider["name"] == "ray" and len(provider["nodes"]) == 2
        groups = {g["name"]: g for g in report["data"]}
        hosts = {rank["host"] for g in groups.values() for rank in g["ranks"]}
        assert hosts == {"127.0.0.2", "127.0.0.3"}, "engines run on both nodes"
        (spanning,) = [name for name, g in groups.items() if len(g["nodes"]) == 2]
        (survivor,) = [name for name in groups if name != spanning]
        head_node = groups[survivor]["nodes"][0]

        stop, outcomes = asyncio.Event(), []  # type: ignore[var-annotated]
        load = [asyncio.create_task(_steady(http, url, stop, outcomes, i)) for i in range(3)]
        await asyncio.sleep(1.0)
        cluster.kill_worker()
        killed, routed_while_down, saw_down = time.monotonic(), set(), False
        while True:
            group = {g["name"]: g for g in (await _engines(http, url))["data"]}[spanning]
            replica = (await _replicas(http, url))[spanning]
            if group["state"] != "ready":
                saw_down = True
                routed_while_down.add(replica["requests"])
            elif saw_down:
                break
            assert time.monotonic() - killed < 120, f"the group did not come back: {group['events'][-3:]}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*load)
        after = {g["name"]: g for g in (await _engines(http, url))["data"]}

    assert outcomes.count(200) == len(outcomes), f"failed requests: {[s for s in outcomes if s != 200]}"
    assert len(routed_while_down) <= 2, "the pool routed to the group while it was down"  # drained at once
    moved = after[spanning]
    assert moved["nodes"] == [head_node] and {rank["host"] for rank in moved["ranks"]} == {"127.0.0.2"}
    assert moved["restarts"] >= 1 and "draining" in [event["to"] for event in moved["events"]]
