"""Engine groups of real llama.cpp processes: SmolLM2 split over a leader and two ``rpc-server``
workers, supervised as one replica.

- The group answers through the gateway with the openai SDK, and greedily it says exactly what
  one llama-server process holding the whole model says (same build, no --rpc).
- SIGKILL one RPC worker under load: the group leaves the pool at once, is restarted whole and
  probed back in; no non-streamed request fails (the other group takes them); a stream on the
  killed group ends with one error event; every transition is in /admin/engines and /metrics.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.spread import one_stream_per_replica

pytestmark = pytest.mark.engine
GROUP, SINGLE = "smollm2-rpc", "smollm2-single"
PROMPT = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def groups(rpc_build: tuple[Path, Path], smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    common = {"backend": "llamacpp", "path": "embedded:smollm2", "context_size": 1024, "parallel": 2,
              "embeddings": False,
              "health": {"probe_interval_s": 0.5, "probe_timeout_s": 1.0, "ejection_base_s": 0.5}}
    config = {
        "models": [
            {"name": GROUP, "replicas": 2, "distributed": {"provider": "local", "rpc_workers": 2}, **common},
            {"name": SINGLE, **common},
        ],
        "logging": {"level": "INFO"},
        # the single process runs the same build as the group's leader: only the split differs
        "engines": {"prefer": "llama-server", "llama_server_path": str(rpc_build[0]), "threads": 1,
                    "restart_backoff_initial_s": 0.2, "group_health_interval_s": 0.5},
    }
    gateway = GatewayProcess(config).start(timeout=240)
    yield gateway
    gateway.stop()


def test_the_programs_take_the_flags_the_coordinator_gives_them(rpc_build: tuple[Path, Path]) -> None:
    server, worker = rpc_build
    usage = subprocess.run([str(worker), "--help"], capture_output=True, text=True, timeout=30, check=False)
    for flag in ("--host", "--port", "--threads"):
        assert flag in usage.stderr + usage.stdout
    help_text = subprocess.run([str(server), "--help"], capture_output=True, text=True, timeout=30, check=False).stdout
    for flag in ("--rpc", "--n-gpu-layers", "--parallel", "--ctx-size", "--alias"):
        assert flag in help_text


def test_a_split_group_answers_like_one_process(groups: GatewayProcess) -> None:
    with openai.OpenAI(base_url=groups.url + "/v1", api_key="unused", max_retries=0, timeout=120) as client:
        answers = {}
        for model in (GROUP, SINGLE):
            reply = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=24, temperature=0, seed=1)
            answers[model] = reply.choices[0].message.content
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(
            model=GROUP, messages=PROMPT, max_tokens=24, temperature=0, seed=1, stream=True) if chunk.choices)
    assert answers[GROUP], "the group answered"
    assert answers[GROUP] == answers[SINGLE] == streamed
    report = _engines_sync(groups)
    group = next(g for g in report["data"] if g["name"] == f"{GROUP}-0")
    assert [rank["role"] for rank in group["ranks"]] == ["worker", "worker", "leader"]
    assert group["state"] == "ready" and group["provider"] == "local"


def _engines_sync(gateway: GatewayProcess) -> dict[str, Any]:
    from inferlab.testing.gateway_process import http_get

    status, body = http_get(gateway.url + "/admin/engines")
    assert status == 200
    return dict(orjson.loads(body))


async def _engines(http: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    async with http.get(url + "/admin/engines") as response:
        return {group["name"]: group for group in orjson.loads(await response.read())["data"]}


async def _steady(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, outcomes: list[int], i: int) -> None:
    body = {"model": GROUP, "max_tokens": 6, "messages": [{"role": "user", "content": f"Say hi #{i}"}]}
    while not stop.is_set():
        async with http.post(url + "/v1/chat/completions", json=body) as response:
            await response.read()
            outcomes.append(response.status)


async def _stream(http: aiohttp.ClientSession, url: str, started: asyncio.Event) -> list[str]:
    body = {"model": GROUP, "max_tokens": 400, "ignore_eos": True, "stream": True,
            "messages": [{"role": "user", "content": "Tell a long story."}]}
    events: list[str] = []
    async with http.post(url + "/v1/chat/completions", json=body) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: "):
                events.append(line[6:].strip().decode())
                started.set()
    return events


async def test_a_killed_rpc_worker_drains_and_restarts_its_group(groups: GatewayProcess) -> None:
    url, victim_group = groups.url, f"{GROUP}-0"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        streams = await one_stream_per_replica(http, url, GROUP, partial(_stream, http, url))
        stop, outcomes = asyncio.Event(), []  # type: ignore[var-annotated]
        load = [asyncio.create_task(_steady(http, url, stop, outcomes, i)) for i in range(3)]
        await asyncio.sleep(1.0)
        before = (await _engines(http, url))[victim_group]
        worker = next(rank for rank in before["ranks"] if rank["role"] == "worker")
        os.kill(worker["pid"], signal.SIGKILL)
        killed_at, killed = len(outcomes), time.monotonic()

        async def serving_again() -> bool:
            group = (await _engines(http, url))[victim_group]
            return group["state"] == "ready" and group["restarts"] > before["restarts"]

        while not await serving_again():
            assert time.monotonic() - killed < 90, "the group was not restarted within 90 s"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*load)
        results = await asyncio.gather(*streams)
        after = (await _engines(http, url))[victim_group]
        async with http.get(url + "/metrics") as response:
            metrics = (await response.text()).splitlines()

    assert len(outcomes) > killed_at + 3, "the load kept flowing after the kill"
    assert outcomes.count(200) == len(outcomes), f"failed requests: {[s for s in outcomes if s != 200]}"
    ended_in_error = [events for events in results if events[-1] != "[DONE]"]
    assert len(ended_in_error) == 1, [f"{len(events)} events, the last: {events[-1][:160]}" for events in results]
    assert [e for e in ended_in_error[0] if "error" in orjson.loads(e)] == [ended_in_error[0][-1]]
    states = [event["to"] for event in after["events"]]
    assert states[-4:] == ["restarting", "placing", "starting", "ready"]
    assert "draining" in states and "worker rank" in after["last_error"]
    assert {rank["pid"] for rank in after["ranks"]}.isdisjoint({rank["pid"] for rank in before["ranks"]})
    assert any(line.startswith(f'inferlab_engine_group_transitions_total{{group="{victim_group}",state="draining"}}')
               for line in metrics)
    assert any(line.startswith(f'inferlab_engine_group_recovery_seconds_count{{group="{victim_group}"}}')
               for line in metrics)
