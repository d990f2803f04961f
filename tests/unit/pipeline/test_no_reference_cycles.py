"""A request leaves nothing for the garbage collector: however it ends — answered whole, streamed,
refused, failed by the engine before or after its first byte, or its client gone — its call, its
aiohttp request and its response are freed when the last reference goes, not left in reference
cycles for the collector to find.

A request that did leave its call in a cycle took about 40 objects with it (the aiohttp request,
its headers and payload, the response and its writer); under load the collector's walks over
them paused the event loop for milliseconds at a time (docs/benchmarks.md). Shown through the
real gateway app in front of the engine simulator, each feature set that changes the steps of
the chain: every optional step off, the defaults (usage metering, SLO tracking), and limits with
the response cache on top. The automatic collector is off while the requests run; one collection
afterwards, keeping what it finds (``gc.DEBUG_SAVEALL``), shows what they left behind.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
REQUESTS = 5  # of each kind: one left behind per request would show as five
FEATURES = {
    "every optional step off": {"metering": False, "slo": False},
    "defaults": {},
    "limits and cache": {"ratelimit": True, "cache": True},
}


class Gateway:
    def __init__(self, server: TestServer, sim: EngineSimulator) -> None:
        self.server = server
        self.sim = sim
        self.prompts = 0

    def body(self, stream: bool, **extra: Any) -> dict[str, Any]:
        self.prompts += 1  # a new prompt each time: never a cache hit
        return {"model": MODEL, "messages": [{"role": "user", "content": f"prompt {self.prompts}"}],
                "max_tokens": 8, "temperature": 0, "stream": stream, **extra}

    async def post(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session, \
                session.post(self.server.make_url("/v1/chat/completions"), json=payload) as response:
            return response.status, await response.read()

    async def leave_mid_stream(self) -> None:
        async with aiohttp.ClientSession() as session:
            response = await session.post(self.server.make_url("/v1/chat/completions"),
                                          json=self.body(True, max_tokens=50))
            assert response.status == 200
            await response.content.readline()  # the first event is out: the client goes away
            response.close()

    async def settle_down(self) -> None:
        """Until no replica slot is in flight: every request has ended on the gateway's side too."""
        pool = self.server.app[SERVICES].router.pool(MODEL)
        for _ in range(200):
            if sum(replica.in_flight for replica in pool.replicas) == 0:
                await asyncio.sleep(0.05)  # the handlers' last steps after the slot went back
                return
            await asyncio.sleep(0.01)
        raise AssertionError("a request is still in flight")


@pytest.fixture(params=list(FEATURES))
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateway]:
    sim = EngineSimulator(SimulatorScript(completion_tokens=8), model=MODEL)
    await sim.start()
    settings = Settings(data_dir=tmp_path, features=FEATURES[request.param],
                        ratelimit={"limits": [{"scope": "key", "rpm": 10_000, "max_concurrent": 50}]},
                        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1",
                                 "health": {"failure_threshold": 100}}])  # failing engines stay in routing
    server = TestServer(await create_app(settings))
    await server.start_server()
    try:
        yield Gateway(server, sim)
    finally:
        await server.close()
        await sim.stop()


def _ours(thing: object) -> bool:
    kind = type(thing)
    return kind.__module__.startswith("inferlab.") or issubclass(kind, (web.BaseRequest, web.StreamResponse))


async def _left_in_cycles(send: Callable[[], Awaitable[None]], gateway: Gateway) -> Counter[str]:
    """What ``send``'s requests left for the collector: the gateway's objects (calls, steps'
    state, aiohttp requests and responses) by type."""
    await send()  # once first: lazily built things (statements, tokenizer handles) are not the request's
    await gateway.settle_down()
    gc.collect()
    gc.disable()
    try:
        for _ in range(REQUESTS):
            await send()
        await gateway.settle_down()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return Counter(type(thing).__qualname__ for thing in gc.garbage if _ours(thing))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_an_answered_request_leaves_no_cycle(gateway: Gateway) -> None:
    async def send() -> None:
        for stream in (False, True):
            status, raw = await gateway.post(gateway.body(stream))
            assert status == 200 and (raw.endswith(b"data: [DONE]\n\n") if stream else raw.startswith(b"{"))

    assert await _left_in_cycles(send, gateway) == Counter()


async def test_a_refused_request_leaves_no_cycle(gateway: Gateway) -> None:
    async def send() -> None:
        assert (await gateway.post(gateway.body(True, max_tokens=-1)))[0] == 400
        assert (await gateway.post({**gateway.body(False), "model": "no-such-model"}))[0] == 404

    assert await _left_in_cycles(send, gateway) == Counter()


async def test_an_engine_failure_before_the_first_byte_leaves_no_cycle(gateway: Gateway) -> None:
    gateway.sim.script.update({"fail_status": 500, "fail_next": -1})

    async def send() -> None:
        for stream in (False, True):
            assert (await gateway.post(gateway.body(stream)))[0] == 502

    assert await _left_in_cycles(send, gateway) == Counter()


async def test_a_stream_cut_by_the_engine_leaves_no_cycle(gateway: Gateway) -> None:
    gateway.sim.script.update({"cut_after_tokens": 3})

    async def send() -> None:
        status, raw = await gateway.post(gateway.body(True))  # one error event ends the stream
        assert status == 200 and raw.count(b'"error"') == 1

    assert await _left_in_cycles(send, gateway) == Counter()


async def test_a_client_gone_mid_stream_leaves_no_cycle(gateway: Gateway) -> None:
    gateway.sim.script.update({"token_delay_s": 0.02, "completion_tokens": 50})
    assert await _left_in_cycles(gateway.leave_mid_stream, gateway) == Counter()
