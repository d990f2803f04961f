"""Three real llama-server replicas (SmolLM2) behind one gateway: SIGKILL one under load.

Non-streamed requests never fail (in-flight ones fail over before their first byte); the stream
that was on the killed replica ends with one SSE error event; the replica is restarted, probed back
in, and takes traffic again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.spread import one_stream_per_replica
from tests.conftest import smollm2_config

pytestmark = pytest.mark.engine
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def three_replicas(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    config = smollm2_config(
        replicas=3, parallel=2, context_size=1024, embeddings=False,
        routing={"strategy": "least_outstanding"},
        health={"probe_interval_s": 0.5, "probe_timeout_s": 1.0, "ejection_base_s": 0.5, "scrape_interval_s": 0.5},
    )
    config["engines"] = {**config["engines"], "threads": 1, "restart_backoff_initial_s": 0.2}  # type: ignore[dict-item]
    gateway = GatewayProcess(config).start()
    yield gateway
    gateway.stop()


async def backends(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with http.get(url + "/admin/backends") as response:
        replicas: list[dict[str, Any]] = orjson.loads(await response.read())["data"][0]["replicas"]
        return replicas


async def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def steady(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, outcomes: list[int], i: int) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": f"Say hi #{i}"}]}
    while not stop.is_set():
        async with http.post(url + "/v1/chat/completions", json=body) as response:
            await response.read()
            outcomes.append(response.status)


async def long_stream(http: aiohttp.ClientSession, url: str, started: asyncio.Event) -> list[str]:
    body = {"model": MODEL, "max_tokens": 900, "ignore_eos": True, "stream": True,  # a context of 1024 holds it
            "messages": [{"role": "user", "content": "Tell a long story."}]}
    events: list[str] = []
    async with http.post(url + "/v1/chat/completions", json=body) as response:
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: "):
                events.append(line[6:].strip().decode())
                started.set()
    return events


async def test_sigkill_one_replica_under_load(three_replicas: GatewayProcess) -> None:
    url = three_replicas.url
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await wait_until(lambda: _all_healthy(http, url), 120, "three healthy replicas")

        streams = await one_stream_per_replica(http, url, MODEL, partial(long_stream, http, url))
        replicas = await backends(http, url)

        stop, outcomes = asyncio.Event(), []  # type: ignore[var-annotated]
        workers = [asyncio.create_task(steady(http, url, stop, outcomes, i)) for i in range(3)]
        async def load_flowing() -> bool:
            return len(outcomes) >= 3

        await wait_until(load_flowing, 30, "the steady load to flow")
        # the kill must land mid-stream: a machine that outran the test says so here, not below
        assert not any(stream.done() for stream in streams), "a long stream ended before the kill"
        victim = replicas[1]
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = len(outcomes)

        async def back_in_service() -> bool:
            now = (await backends(http, url))[1]
            return bool(now["pid"] not in (None, victim["pid"]) and now["healthy"]
                        and now["breaker"]["state"] == "closed" and now["requests"] > after_kill_requests)

        await asyncio.sleep(0.3)
        after_kill_requests = (await backends(http, url))[1]["requests"]
        await wait_until(back_in_service, 90, "the killed replica to be restarted and serve again")
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*workers)
        results = await asyncio.gather(*streams)

    assert len(outcomes) > killed_at + 3, "the load kept flowing after the kill"
    assert outcomes.count(200) == len(outcomes), f"failed requests: {[s for s in outcomes if s != 200]}"
    ended_in_error = [events for events in results if events[-1] != "[DONE]"]
    assert len(ended_in_error) == 1, [f"{len(events)} events, the last: {events[-1][:120]}" for events in results]
    errors = [e for e in ended_in_error[0] if e != "[DONE]" and "error" in orjson.loads(e)]
    assert len(errors) == 1 and errors[0] == ended_in_error[0][-1]
    assert all(events[-1] == "[DONE]" for events in results if events is not ended_in_error[0])


async def _all_healthy(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        replicas = await backends(http, url)
    except aiohttp.ClientError:
        return False
    return len(replicas) == 3 and all(r["healthy"] for r in replicas)
