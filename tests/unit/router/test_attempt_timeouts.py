"""A hung replica costs one bounded wait — derived from the request's prompt, not the 300 s read
timeout — then the request fails over, or ends with 504 when no replica answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
FLOOR_S = 0.4
# derived bounds only (no explicit *_timeout_s); fast engines assumed so the floor dominates
RETRY = {"timeout_floor_s": FLOOR_S, "prefill_tokens_per_s": 10_000, "decode_tokens_per_s": 1_000}


class Gateway:
    def __init__(self, sims: list[EngineSimulator], server: TestServer, http: aiohttp.ClientSession) -> None:
        self.sims, self.server, self.http = sims, server, http

    async def chat(self, content: str = "hello", *, stream: bool = False) -> tuple[int, Any, float]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 3, "stream": stream}
        started = time.monotonic()
        async with self.http.post(self.server.make_url("/v1/chat/completions"), json=body) as response:
            raw = await response.read()
            elapsed = time.monotonic() - started
            if response.content_type == "text/event-stream":
                events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
                return response.status, events, elapsed
            return response.status, orjson.loads(raw), elapsed


@pytest.fixture
async def gateways() -> AsyncIterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gateway in started:
        await gateway.http.close()
        await gateway.server.close()
        for sim in gateway.sims:
            await sim.stop()


async def start(gateways: list[Gateway], scripts: list[SimulatorScript], protocol: str = "openai",
                **retry: Any) -> Gateway:
    sims = [EngineSimulator(script, model=MODEL, protocol=protocol) for script in scripts]  # type: ignore[arg-type]
    urls = [await sim.start() + ("/v1" if protocol == "openai" else "") for sim in sims]
    model = {"name": MODEL, "backend": protocol, "urls": urls, "routing": {"strategy": "round_robin"},
             "retry": {**RETRY, **retry}}
    # the read timeout is far away: only the derived attempt bounds can end a hung attempt in time
    settings = load_settings(overrides={"models": [model], "upstream": {"read_timeout_s": 60}})
    server = TestServer(await create_app(settings))
    await server.start_server()
    gateway = Gateway(sims, server, aiohttp.ClientSession())
    gateways.append(gateway)
    return gateway


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
async def test_hung_replica_fails_over_within_the_first_byte_bound(gateways: list[Gateway], protocol: str) -> None:
    gateway = await start(gateways, [SimulatorScript(hang=True), SimulatorScript(completion_tokens=3)], protocol)
    for stream in (False, True, False, True):
        status, _, elapsed = await gateway.chat(stream=stream)
        assert status == 200 and elapsed < FLOOR_S + 0.6, elapsed
    assert gateway.sims[0].requests_total >= 1 and gateway.sims[1].requests_total == 4


@pytest.mark.parametrize("stream", [False, True])
async def test_no_replica_answering_is_a_504_in_time(gateways: list[Gateway], stream: bool) -> None:
    gateway = await start(gateways, [SimulatorScript(hang=True)])
    status, body, elapsed = await gateway.chat(stream=stream)
    assert status == 504 and body["error"]["code"] == "engine_timeout"
    assert FLOOR_S - 0.05 < elapsed < FLOOR_S + 0.6, elapsed


async def test_a_long_prompt_is_given_its_prefill_time(gateways: list[Gateway]) -> None:
    # prefill takes 0.8 s here: a short prompt's bound (0.4 s) is too short for it, a prompt of
    # ~1,500 estimated tokens at an expected 1,000 tokens/s is given 0.4 + 1.5 s
    gateway = await start(gateways, [SimulatorScript(completion_tokens=3, prefill_delay_s=0.8)],
                          prefill_tokens_per_s=1_000)
    assert (await gateway.chat("short", stream=True))[0] == 504
    status, events, elapsed = await gateway.chat("word " * 900, stream=True)
    assert status == 200 and events[-1] == "[DONE]" and elapsed > 0.8


async def test_a_stream_that_falls_silent_is_ended_with_one_error(gateways: list[Gateway]) -> None:
    gateway = await start(gateways, [SimulatorScript(completion_tokens=3, token_delay_s=30)])
    status, events, elapsed = await gateway.chat(stream=True)
    assert status == 200 and elapsed < FLOOR_S + 0.6, elapsed
    assert orjson.loads(events[0])["choices"]  # the first token came
    errors = [orjson.loads(e) for e in events if e != "[DONE]" and "error" in orjson.loads(e)]
    assert len(errors) == 1 and errors[0]["error"]["code"] == "engine_timeout" and events[-1] != "[DONE]"
