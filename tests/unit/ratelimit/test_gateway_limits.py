"""Rate limits through the in-process gateway: 429s, OpenAI's headers, the SDK's retries,
concurrency slots and token reservations given back on success, errors and disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
HI = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=5)


async def gateway(sim: EngineSimulator, limits: list[dict[str, Any]], **ratelimit: Any) -> TestServer:
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "ratelimit": {"limits": limits, **ratelimit},
        "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url + "/v1"}],
        "upstream": {"read_timeout_s": 2.0},
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    return server


async def chat(session: aiohttp.ClientSession, server: TestServer, **extra: Any) -> aiohttp.ClientResponse:
    body = {"model": MODEL, "messages": HI, "max_tokens": 5, **extra}
    async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
        await response.read()
        return response


async def test_429_with_retry_after_and_openai_headers(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "rpm": 2, "tpm": 100000}])
    try:
        async with aiohttp.ClientSession() as session:
            first = await chat(session, server)
            assert first.status == 200
            assert first.headers["x-ratelimit-limit-requests"] == "2"
            assert first.headers["x-ratelimit-remaining-requests"] == "1"
            assert first.headers["x-ratelimit-reset-requests"].endswith("s")
            assert first.headers["x-ratelimit-limit-tokens"] == "100000"
            assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100000
            assert (await chat(session, server)).status == 200
            refused = await chat(session, server)
            assert refused.status == 429
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    finally:
        await server.close()


async def test_streamed_responses_carry_the_headers(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "rpm": 5}])
    try:
        async with aiohttp.ClientSession() as session:
            body = {"model": MODEL, "messages": HI, "max_tokens": 5, "stream": True}
            async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
                assert (await response.read()).endswith(b"data: [DONE]\n\n")
                assert response.headers["x-ratelimit-remaining-requests"] == "4"
    finally:
        await server.close()


async def test_the_openai_sdk_gets_rate_limit_error_and_honours_retry_after(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "rpm": 1}], window_s=1.0)
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0, timeout=10)
    retrying = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=2, timeout=10)
    try:
        await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)
        assert refused.value.response.headers["retry-after"] == "1"
        started = asyncio.get_running_loop().time()
        reply = await retrying.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)  # waits, then succeeds
        assert reply.choices[0].message.content
        assert asyncio.get_running_loop().time() - started >= 0.5
    finally:
        await client.close()
        await retrying.close()
        await server.close()


async def test_concurrency_slots_come_back_after_success_error_and_disconnect(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "max_concurrent": 1}])
    try:
        async with aiohttp.ClientSession() as session:
            assert (await chat(session, server)).status == 200
            assert (await chat(session, server)).status == 200  # the slot came back
            sim.script = SimulatorScript(fail_status=500, fail_next=-1)
            assert (await chat(session, server)).status >= 500
            sim.script = SimulatorScript(completion_tokens=50, token_delay_s=0.05)
            body = {"model": MODEL, "messages": HI, "max_tokens": 50, "stream": True}
            async with session.post(server.make_url("/v1/chat/completions"), json=body) as response:
                assert response.status == 200
                busy = await chat(session, server)
                assert busy.status == 429  # one slot, held by the stream
                await response.content.readline()
            await asyncio.sleep(0.3)  # the client went away mid-stream
            sim.script = SimulatorScript(completion_tokens=5)
            assert (await chat(session, server)).status == 200
    finally:
        await server.close()


async def test_tokens_are_reconciled_with_the_real_usage(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "tpm": 3000}])
    try:
        async with aiohttp.ClientSession() as session:
            # 2,000 reserved each: a second one fits only because the first was reconciled to ~20
            assert (await chat(session, server, max_tokens=2000)).status == 200
            second = await chat(session, server, max_tokens=2000)
            assert second.status == 200
            assert int(second.headers["x-ratelimit-remaining-tokens"]) < 1000  # reserved, not yet reconciled
            third = await chat(session, server, max_tokens=2000)
            assert third.status == 200
    finally:
        await server.close()


async def test_spoofed_forwarded_for_never_changes_the_bucket(sim: EngineSimulator) -> None:
    server = await gateway(sim, [{"scope": "key", "rpm": 1}])
    try:
        async with aiohttp.ClientSession() as session:
            assert (await chat(session, server)).status == 200
            url = server.make_url("/v1/chat/completions")
            body = {"model": MODEL, "messages": HI, "max_tokens": 5}
            async with session.post(url, json=body, headers={"X-Forwarded-For": "203.0.113.9"}) as response:
                assert response.status == 429
    finally:
        await server.close()


async def test_without_limits_nothing_is_added(sim: EngineSimulator) -> None:
    server = await gateway(sim, [])
    try:
        async with aiohttp.ClientSession() as session:
            response = await chat(session, server)
            assert response.status == 200 and "x-ratelimit-limit-requests" not in response.headers
    finally:
        await server.close()
