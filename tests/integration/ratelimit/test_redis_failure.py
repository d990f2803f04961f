"""Redis stopped mid-load under each failure policy: no hang, no 500, the documented behaviour,
and shared limits again once Redis is back. A private redis-server is stopped, never the shared one."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

from .harness import MODEL, PrivateRedis

MAX_LATENCY_S = 2.0


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=2)


async def _load(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, seen: list[tuple[float, int, str | None]]) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    while not stop.is_set():
        started = time.monotonic()
        async with session.post(url, json=body) as response:
            await response.read()
            seen.append((time.monotonic() - started, response.status, response.headers.get("Retry-After")))
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("policy", ["fail-open-local", "fail-closed"])
async def test_redis_stopped_mid_load(sim: EngineSimulator, policy: str, redis_server_binary: None) -> None:
    redis = PrivateRedis().start()
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "redis_url": redis.url,
        "ratelimit": {
            "limits": [{"scope": "key", "rpm": 100000, "max_concurrent": 64}],
            "redis_timeout_s": 0.1, "redis_retry_s": 0.3, "expected_replicas": 2,
            "failure": {"requests": policy, "tokens": policy, "concurrent": policy},
        },
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1"}],
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    url = str(server.make_url("/v1/chat/completions"))
    seen: list[tuple[float, int, str | None]] = []
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            workers = [asyncio.create_task(_load(session, url, stop, seen)) for _ in range(8)]
            await asyncio.sleep(0.5)
            before = len(seen)
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(1.0)
            during = seen[before:]
            await asyncio.to_thread(redis.start)
            # Recovery: within 6 s of the restart, half a second in which every answer is a 200.
            # A fixed moment is not enough: in CI, Redis was back, then one call missed the 0.1 s
            # bound (an event-loop stall on a loaded machine counts against it), and that is one
            # more 0.3 s of the failure policy, as documented; twice it landed in a fixed window.
            recovered = await _recovery(seen, window_s=0.5, within_s=6.0)
            stop.set()
            await asyncio.gather(*workers)
        assert during, "no load while Redis was down"
        statuses = {status for _, status, _ in seen}
        assert 500 not in statuses and statuses <= {200, 503}
        assert max(latency for latency, _, _ in seen) < MAX_LATENCY_S, "a request waited on Redis"
        assert all(status == 200 for _, status, _ in seen[:before])
        if policy == "fail-closed":
            refused = [retry for _, status, retry in during if status == 503]
            assert refused and all(retry is not None for retry in refused)
        else:
            assert all(status == 200 for _, status, _ in during)
        assert recovered, "no recovery after Redis came back"
        metrics = await _metrics(server)
        assert f'inferlab_ratelimit_fallbacks_total{{policy="{policy}"}}' in metrics
    finally:
        await server.close()
        await asyncio.to_thread(redis.stop)


async def _recovery(seen: list[tuple[float, int, str | None]], *, window_s: float, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        mark = len(seen)
        await asyncio.sleep(window_s)
        window = seen[mark:]
        if window and all(status == 200 for _, status, _ in window):
            return True
    return False


async def _metrics(server: TestServer) -> str:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as response:
        return await response.text()
