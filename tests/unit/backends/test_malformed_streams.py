"""Malformed engine streams through the real gateway app: whatever the engine sends mid-stream
(bad JSON, an error object or event, an unknown event, an over-long line, an early end), the client
gets the chunks before it, then exactly one OpenAI-shaped error event, never ``[DONE]``; and the
rate-limit ticket is settled with what was forwarded (counted with the engine's tokenizer when it has
one, else estimated)."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam

from inferlab.app import SERVICES, create_app
from inferlab.config import load_settings
from inferlab.ratelimit.identity import Identity
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import free_port
from inferlab.testing.pytest_plugin import MakeSim

MODEL = "sim-model"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
TOKENS = 6
BEFORE_FAULT = 2
TPM = 1_000_000
LOCAL = Identity("ip:127.0.0.1", "ip:127.0.0.1", "default")

SSE_BREAKING = ["invalid_json", "not_json", "error_event", "object_error", "event_error", "unknown_event",
                "long_line", "truncate", "cut_line"]
NDJSON_BREAKING = ["invalid_json", "not_json", "error_event", "long_line", "truncate", "cut_line"]


async def start_gateway(sim: EngineSimulator, **upstream: Any) -> TestServer:
    assert sim.base_url is not None
    url = sim.base_url + "/v1" if sim.protocol == "openai" else sim.base_url
    settings = load_settings(overrides={
        "features": {"ratelimit": True},
        "ratelimit": {"limits": [{"scope": "key", "tpm": TPM}]},
        "models": [{"name": MODEL, "backend": sim.protocol, "url": url}],
        "upstream": {"read_timeout_s": 2.0, **upstream},
    })
    server = TestServer(await create_app(settings))
    await server.start_server()
    return server


@pytest.fixture(params=["openai", "ollama"])
async def sim(request: pytest.FixtureRequest, make_sim: MakeSim) -> EngineSimulator:
    script = SimulatorScript(completion_tokens=TOKENS, stream_fault_after=BEFORE_FAULT)
    return await make_sim(script, model=MODEL, protocol=request.param)


@pytest.fixture
async def gateway(sim: EngineSimulator) -> AsyncIterator[TestServer]:
    server = await start_gateway(sim)
    yield server
    await server.close()


def sse_payloads(body: bytes) -> list[bytes]:
    """The data of every event the gateway sent (its own SSE: one ``data:`` line per event)."""
    payloads = []
    for event in body.split(b"\n\n"):
        if event:
            assert event.startswith(b"data: "), event
            payloads.append(event[len(b"data: "):])
    return payloads


async def stream_chat(server: TestServer) -> tuple[int, bytes, int]:
    """Stream a chat request; (status, body, prompt tokens reserved for it at admission)."""
    body = orjson.dumps({"model": MODEL, "messages": HI, "stream": True, "max_tokens": 50})
    async with aiohttp.ClientSession() as session, session.post(
        server.make_url("/v1/chat/completions"), data=body, headers={"Content-Type": "application/json"}
    ) as response:
        return response.status, await response.read(), len(body) // 4 + 1


async def settled_tokens(app: web.Application) -> int:
    """Tokens charged to the test client's key bucket, once every ticket is settled."""
    limits = app[SERVICES].limits
    assert limits is not None
    for _ in range(100):
        if limits.admission.outstanding == 0:
            break
        await asyncio.sleep(0.01)
    assert limits.admission.outstanding == 0, "a ticket was never settled"
    buckets = await limits.admission.peek(LOCAL, MODEL)
    [(limit, used)] = [value for key, value in buckets.items() if key.startswith("t:")]
    assert limit == TPM
    return used


def assert_one_error_at_the_end(payloads: list[bytes]) -> dict[str, Any]:
    assert b"[DONE]" not in payloads
    decoded = [orjson.loads(p) for p in payloads]
    errors = [d for d in decoded if "error" in d]
    assert len(errors) == 1, decoded
    assert decoded[-1] is errors[0]
    error = errors[0]["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"] and error["type"]
    return dict(error)


@pytest.mark.parametrize(
    ("sim", "fault"),
    [("openai", fault) for fault in SSE_BREAKING] + [("ollama", fault) for fault in NDJSON_BREAKING],
    indirect=["sim"],
)
async def test_a_malformed_stream_ends_with_one_error_event_and_settles_what_was_sent(
    sim: EngineSimulator, gateway: TestServer, fault: str
) -> None:
    sim.script.stream_fault = fault
    status, body, prompt = await stream_chat(gateway)
    assert status == 200
    payloads = sse_payloads(body)
    error = assert_one_error_at_the_end(payloads)
    assert "simulated" not in error["message"]  # the engine's own words stay in the gateway's log
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert len(chunks) == BEFORE_FAULT
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert "fault" not in "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    if sim.protocol == "openai":  # an engine with a tokenizer (/tokenize): what was sent, counted exactly
        assert await settled_tokens(gateway.app) == sim.stats.prompt_tokens_total + BEFORE_FAULT
    else:  # Ollama has none: the estimate, the prompt from the body's size and one token a chunk
        assert await settled_tokens(gateway.app) == prompt + BEFORE_FAULT


@pytest.mark.parametrize("sim", ["openai"], indirect=True)
@pytest.mark.parametrize("fault", ["keepalive", "no_done"])
async def test_comments_ids_and_a_missing_done_after_the_finish_are_not_faults(
    sim: EngineSimulator, gateway: TestServer, fault: str
) -> None:
    sim.script.stream_fault = fault
    status, body, _ = await stream_chat(gateway)
    assert status == 200
    payloads = sse_payloads(body)
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert not [c for c in chunks if "error" in c]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]).split()
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert await settled_tokens(gateway.app) == sim.stats.prompt_tokens_total + TOKENS  # the engine's usage


@pytest.mark.parametrize("fault", ["invalid_json", "error_event", "truncate"])
async def test_a_malformed_first_event_is_a_plain_502(
    sim: EngineSimulator, gateway: TestServer, fault: str
) -> None:
    sim.script.stream_fault, sim.script.stream_fault_after = fault, 0
    status, body, _ = await stream_chat(gateway)
    assert status == 502
    error = orjson.loads(body)["error"]
    assert error["type"] == "upstream_error" and error["message"]
    assert await settled_tokens(gateway.app) == 0  # nothing was generated for the client


async def test_the_openai_sdk_raises_on_the_error_event(sim: EngineSimulator, gateway: TestServer) -> None:
    sim.script.stream_fault = "truncate"
    base_url = str(gateway.make_url("/v1"))
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
        received = []
        with pytest.raises(openai.APIError) as raised:
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == BEFORE_FAULT
    assert "before it finished" in raised.value.message


async def test_the_line_limit_is_the_configured_one(sim: EngineSimulator) -> None:
    """A line of ``upstream.max_stream_line_bytes`` (newline included) passes, beyond aiohttp's own
    128 KiB default; one byte more ends the stream with the error."""
    limit = 300_000
    framing = len(b"data: \n") if sim.protocol == "openai" else len(b"\n")
    server = await start_gateway(sim, max_stream_line_bytes=limit)
    try:
        sim.script.stream_fault, sim.script.fault_line_bytes = "long_line", limit - framing
        status, body, _ = await stream_chat(server)
        payloads = sse_payloads(body)
        assert status == 200 and payloads[-1] == b"[DONE]"
        assert max(len(p) for p in payloads) >= 200_000
        sim.script.fault_line_bytes = limit - framing + 1
        status, body, _ = await stream_chat(server)
        assert f"{limit} bytes" in assert_one_error_at_the_end(sse_payloads(body))["message"]
    finally:
        await server.close()


@pytest.fixture
async def sim_process() -> AsyncIterator[str]:
    """A simulator in a process of its own, so that only the gateway's memory is measured here."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inferlab.testing.simulator", "--port", str(port), "--model", MODEL,
        "--tokens", str(TOKENS), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        await process.wait()


async def test_memory_stays_bounded_by_the_line_limit(sim_process: str) -> None:
    """A 32 MiB line costs the gateway about its 64 KiB limit plus aiohttp's read buffer, not 32 MiB."""
    async with aiohttp.ClientSession() as session:
        script = {"stream_fault": "long_line", "fault_line_bytes": 32 * 1024 * 1024}
        async with session.post(sim_process + "/_sim/script", json=script) as response:
            assert response.status == 200
    sim = EngineSimulator(model=MODEL)
    sim.base_url = sim_process
    server = await start_gateway(sim, max_stream_line_bytes=64 * 1024)
    try:
        tracemalloc.start()
        try:
            status, body, _ = await stream_chat(server)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert status == 200
        assert "65536 bytes" in assert_one_error_at_the_end(sse_payloads(body))["message"]
        assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    finally:
        await server.close()
