"""Token and spend quotas through the gateway, on the memory and the Redis limiter: never exceeded
under concurrency, reservations settled exactly once on success, errors and disconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import GATEWAY, create_app
from inferlab.config import load_settings
from inferlab.ratelimit.identity import Identity
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
QUOTA = 10_000
CLIENT = Identity("ip:127.0.0.1", "ip:127.0.0.1", "default")


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=1500, token_delay_s=0.0005)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def server(request: pytest.FixtureRequest, sim: EngineSimulator) -> AsyncIterator[TestServer]:
    extra: dict[str, Any] = {}
    if request.param == "redis":
        extra = {"redis_url": request.getfixturevalue("redis_url"),
                 "ratelimit": {"backend": "redis", "redis_prefix": f"test:{uuid.uuid4().hex}:", "redis_timeout_s": 2.0}}
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "quota": {"limits": [{"scope": "tenant", "daily_tokens": QUOTA, "monthly_spend_usd": 1.0}]},
        "pricing": {"models": {MODEL: {"input_per_million": 10.0, "output_per_million": 30.0}}},
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1"}],
        **extra,
    })
    test_server = TestServer(await create_app(settings))
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def charged(server: TestServer) -> dict[str, int]:
    limits = server.app[GATEWAY].limits
    assert limits is not None
    used = await limits.admission.peek(CLIENT, MODEL)
    return {key.split(":")[0]: value for key, (_, value) in used.items()}


def outstanding(server: TestServer) -> int:
    limits = server.app[GATEWAY].limits
    assert limits is not None
    return limits.admission.outstanding


async def stream(session: aiohttp.ClientSession, server: TestServer, read_all: bool = True) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "tell me"}], "max_tokens": 2000, "stream": True}
    async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
        if read_all:
            await response.read()
        else:
            await response.content.readline()
        return response.status


async def test_concurrent_streams_never_exceed_the_token_quota(server: TestServer, sim: EngineSimulator) -> None:
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(stream(session, server) for _ in range(20)))
        assert statuses.count(200) == 4 and statuses.count(429) == 16  # 4 x (prompt + 2,000) fits in 10,000
        used = await charged(server)
        assert 4 * 1500 < used["qt"] < 4 * 1600  # reconciled with the real usage (1,500 + the prompt each)
        assert outstanding(server) == 0

        # errors give the reservation back
        before = (await charged(server))["qt"]
        sim.script = SimulatorScript(fail_status=400, fail_next=-1)  # the engine refuses: no breaker in the way
        for _ in range(5):  # one at a time: each fits only if the previous one gave its reservation back
            assert await stream(session, server) == 400  # not 429
        assert (await charged(server))["qt"] == before and outstanding(server) == 0

        # disconnects settle at what was streamed, and never above the quota
        sim.script = SimulatorScript(completion_tokens=1500, token_delay_s=0.01)
        assert set(await asyncio.gather(*(stream(session, server, read_all=False) for _ in range(3)))) <= {200, 429}
    for _ in range(100):
        if outstanding(server) == 0:
            break
        await asyncio.sleep(0.05)
    assert outstanding(server) == 0
    used = await charged(server)
    assert before <= used["qt"] <= QUOTA
    assert 0 < used["qs"] <= 1_000_000  # micro-USD of the monthly spend budget


async def test_spend_quota_refuses_with_insufficient_quota(sim: EngineSimulator) -> None:
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "quota": {"limits": [{"scope": "key", "daily_spend_usd": 0.05}]},
        "pricing": {"default": {"input_per_million": 10.0, "output_per_million": 30.0}},
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1"}],
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 1000}
            async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
                assert response.status == 200  # 1,000 x $30/M = $0.03 reserved, ~$0.045 used after reconciliation
            async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
                payload = await response.json()
                assert response.status == 429 and payload["error"]["code"] == "insufficient_quota"
                # used up for the day: nothing to wait for, and the openai SDK is told not to retry
                assert "Retry-After" not in response.headers and response.headers["x-should-retry"] == "false"
                assert response.headers["x-inferlab-quota-limit"] == "0.050000"
                assert "of $0.050000 used, none reserved by requests in progress" in payload["error"]["message"]
    finally:
        await server.close()
