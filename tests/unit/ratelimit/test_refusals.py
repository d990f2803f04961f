"""Refusals that say what to do: a request that can never fit fails at once (400, never retried),
an exhausted quota is a 429 the `openai` SDK does not retry, a busy quota or concurrency limit is a
429 whose Retry-After is when room is expected, and concurrency leases are renewed while held."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=5)


class Gateway:
    """The in-process gateway, counting every request that reaches it."""

    def __init__(self, server: TestServer, seen: list[str]) -> None:
        self.server = server
        self.seen = seen

    @classmethod
    async def start(cls, sim: EngineSimulator, **overrides: Any) -> Gateway:
        settings = load_settings(overrides={
            "features": {"ratelimit": True},
            "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
            **overrides,
        })
        app = await create_app(settings)
        seen: list[str] = []

        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            seen.append(request.path)
            return await handler(request)  # type: ignore[no-any-return]

        app.middlewares.append(count)
        server = TestServer(app)
        await server.start_server()
        return cls(server, seen)

    def sdk(self, max_retries: int) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=str(self.server.make_url("/v1")), api_key="x",
                                  max_retries=max_retries, timeout=10)

    async def chat(self, session: aiohttp.ClientSession, **extra: Any) -> tuple[int, dict[str, Any], Any]:
        body = {"model": MODEL, "messages": HI, "max_tokens": 5, **extra}
        async with session.post(self.server.make_url("/v1/chat/completions"), json=body) as response:
            return response.status, (await response.json()), response.headers


async def test_a_request_above_the_tpm_limit_fails_at_once_with_400(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, ratelimit={"limits": [{"scope": "key", "tpm": 1000}]})
    try:
        async with aiohttp.ClientSession() as session:
            status, body, headers = await gateway.chat(session, max_tokens=2000)
            assert status == 400 and "Retry-After" not in headers and "retry-after-ms" not in headers
            error = body["error"]
            assert error["type"] == "invalid_request_error" and error["code"] == "request_exceeds_limit"
            assert error["param"] == "max_tokens"
            assert "1000" in error["message"].replace(",", "") and "2000" in error["message"].replace(",", "")
            assert (await gateway.chat(session, max_tokens=500))[0] == 200  # a request that fits still does
    finally:
        await gateway.server.close()


async def test_the_openai_sdk_does_not_retry_a_request_that_can_never_fit(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, ratelimit={"limits": [{"scope": "key", "tpm": 1000}]})
    client = gateway.sdk(max_retries=5)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(openai.BadRequestError) as refused:
                await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2000)  # type: ignore[arg-type]
        assert refused.value.code == "request_exceeds_limit"
        assert gateway.seen.count("/v1/chat/completions") == 1
    finally:
        await client.close()
        await gateway.server.close()


async def test_a_rate_limit_of_zero_is_refused_as_never_fitting(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, ratelimit={"limits": [{"scope": "key", "rpm": 0}]})
    try:
        async with aiohttp.ClientSession() as session:
            status, body, _ = await gateway.chat(session)
            assert status == 400 and body["error"]["code"] == "request_exceeds_limit"
            assert "rpm" in body["error"]["message"]
    finally:
        await gateway.server.close()


async def test_a_reservation_above_the_whole_quota_fails_at_once(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, quota={"limits": [{"scope": "key", "daily_tokens": 1000}]})
    try:
        async with aiohttp.ClientSession() as session:
            status, body, headers = await gateway.chat(session, max_tokens=2000)
            assert status == 400 and body["error"]["code"] == "request_exceeds_limit"
            assert "daily" in body["error"]["message"] and "Retry-After" not in headers
    finally:
        await gateway.server.close()


async def test_an_exhausted_quota_is_429_insufficient_quota_that_the_sdk_does_not_retry(sim: EngineSimulator) -> None:
    sim.script = SimulatorScript(completion_tokens=400)
    gateway = await Gateway.start(sim, quota={"limits": [{"scope": "key", "daily_tokens": 1000}]})
    client = gateway.sdk(max_retries=5)
    try:
        async with aiohttp.ClientSession() as session:
            assert (await gateway.chat(session, max_tokens=400))[0] == 200
            assert (await gateway.chat(session, max_tokens=400))[0] == 200  # ~830 used now, settled
            status, body, headers = await gateway.chat(session, max_tokens=400)
        assert status == 429 and body["error"]["code"] == "insufficient_quota"
        assert "Retry-After" not in headers and "retry-after-ms" not in headers
        assert headers["x-should-retry"] == "false"
        used, requested = int(headers["x-inferlab-quota-used"]), int(headers["x-inferlab-quota-requested"])
        assert 800 < used <= 1000 and 400 < requested < 450 and used + requested > 1000
        assert headers["x-inferlab-quota-limit"] == "1000" and headers["x-inferlab-quota-in-flight"] == "0"
        message = body["error"]["message"].replace(",", "")
        assert f"{used} of 1000" in message and str(requested) in message and "daily" in message.lower()
        before = len(gateway.seen)
        async with asyncio.timeout(10):
            with pytest.raises(openai.RateLimitError) as refused:
                await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=400)  # type: ignore[arg-type]
        assert refused.value.code == "insufficient_quota"
        assert len(gateway.seen) - before == 1  # not retried
    finally:
        await client.close()
        await gateway.server.close()


async def _hold(gateway: Gateway, session: aiohttp.ClientSession, started: asyncio.Event, **extra: Any) -> int:
    body = {"model": MODEL, "messages": HI, "stream": True, **extra}
    async with session.post(gateway.server.make_url("/v1/chat/completions"), json=body) as response:
        await response.content.readline()
        started.set()
        await response.read()
        return response.status


async def test_a_quota_reserved_by_requests_in_flight_is_a_retryable_429(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, quota={"limits": [{"scope": "key", "daily_tokens": 10000}]})
    try:
        async with aiohttp.ClientSession() as session:
            sim.script = SimulatorScript(completion_tokens=20, token_delay_s=0.05)
            started = asyncio.Event()
            holder = asyncio.create_task(_hold(gateway, session, started, max_tokens=6000))
            await started.wait()
            status, body, headers = await gateway.chat(session, max_tokens=6000)
            assert status == 429 and body["error"]["code"] != "insufficient_quota"
            assert 1 <= int(headers["Retry-After"]) <= 60 and "x-should-retry" not in headers
            assert int(headers["x-inferlab-quota-in-flight"]) > 6000
            assert "in progress" in body["error"]["message"]
            assert await holder == 200
            assert (await gateway.chat(session, max_tokens=6000))[0] == 200  # the reservation was settled
    finally:
        await gateway.server.close()


async def test_concurrency_retry_after_is_when_a_slot_should_free_not_the_lease_ttl(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, ratelimit={"limits": [{"scope": "key", "max_concurrent": 1}], "lease_ttl_s": 30})
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):  # quick requests: slots are held for milliseconds
                assert (await gateway.chat(session))[0] == 200
            sim.script = SimulatorScript(completion_tokens=10, token_delay_s=0.05)
            started = asyncio.Event()
            holder = asyncio.create_task(_hold(gateway, session, started, max_tokens=10))
            await started.wait()
            status, body, headers = await gateway.chat(session)
            assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
            assert headers["Retry-After"] == "1" and int(headers["retry-after-ms"]) <= 1000
            assert "concurrent" in body["error"]["message"]
            assert await holder == 200
    finally:
        await gateway.server.close()


async def test_a_slot_stays_held_past_the_lease_ttl_while_its_request_lives(sim: EngineSimulator) -> None:
    gateway = await Gateway.start(sim, ratelimit={"limits": [{"scope": "key", "max_concurrent": 1}], "lease_ttl_s": 0.6})
    try:
        async with aiohttp.ClientSession() as session:
            sim.script = SimulatorScript(completion_tokens=40, token_delay_s=0.05)  # a 2 s stream
            started = asyncio.Event()
            holder = asyncio.create_task(_hold(gateway, session, started, max_tokens=40))
            await started.wait()
            for _ in range(3):  # 1.5 s: well past the 0.6 s lease, renewed every 0.2 s
                await asyncio.sleep(0.5)
                assert (await gateway.chat(session))[0] == 429
            assert await holder == 200
            sim.script = SimulatorScript(completion_tokens=5)
            assert (await gateway.chat(session))[0] == 200
    finally:
        await gateway.server.close()
