"""A stream's first event goes to the client the moment the engine sends it — from the engine
connection's callback, before the steps' ``call_next`` have returned — on routes whose every step
passes streams through; otherwise (a step that does not say so) it waits for the whole chain.
The steps' taps see it either way.

Shown through the real gateway app in front of the engine simulator, with one extra step at the
front of the chain that holds the reply once the router returned it: the client has the head and
the first event while the step still holds it, or has nothing until it lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.pipeline import Call, Chain, Next, Reply, routes
from inferlab.pipeline.chain import only_for
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True}


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=4, token_delay_s=0.01)


class Hold:
    """A step at the front of the chain: once ``call_next`` returned, it keeps the reply until
    ``release`` is set."""

    def __init__(self, *, passes_streams_through: bool) -> None:
        if passes_streams_through:
            self.passes_streams_through = True
        self.returned = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        reply = await call_next(call)
        self.returned.set()
        await self.release.wait()
        return reply


@dataclass
class Streamed:
    head_before_release: bool  # the head (and with it the first event) came while the step held the reply
    first: bytes  # the first event, as received
    events: list[dict[str, Any]]  # every event but [DONE], parsed
    headers: CIMultiDict[str]


MakeGateway = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def make_gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[MakeGateway]:
    servers: list[TestServer] = []

    async def make(hold: Hold, **features: bool) -> TestServer:
        """A gateway (metering off unless asked) with ``hold`` at the front of its chain."""
        settings = Settings(data_dir=tmp_path / str(len(servers)), features={"metering": False, **features},
                            models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}])
        server = TestServer(await create_app(settings))
        await server.start_server()
        servers.append(server)
        chain: Chain = server.app[SERVICES].chain
        chain.steps = (hold, *chain.steps)  # before the first call: each route's links are made then
        return server

    yield make
    for server in servers:
        await server.close()


async def stream_through(server: TestServer, hold: Hold, body: dict[str, Any] = BODY) -> Streamed:
    async with aiohttp.ClientSession() as session:
        posted = asyncio.ensure_future(session.post(server.make_url("/v1/chat/completions"), json=body))
        await asyncio.wait_for(hold.returned.wait(), 10)  # the router has the first chunk
        done, _ = await asyncio.wait({posted}, timeout=0.5)
        head_before_release = bool(done)
        first = b""
        if head_before_release:
            response = posted.result()
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        hold.release.set()
        response = await asyncio.wait_for(posted, 10)
        assert response.status == 200, await response.text()
        rest = await asyncio.wait_for(response.read(), 10)
        if not head_before_release:
            first, _, rest = rest.partition(b"\n\n")
            first += b"\n\n"
        body = first + rest
        assert body.endswith(b"data: [DONE]\n\n")
        events = [orjson.loads(event.removeprefix(b"data: ")) for event in body.split(b"\n\n")
                  if event and event != b"data: [DONE]"]
        return Streamed(head_before_release, first, events, response.headers.copy())


async def test_the_first_event_reaches_the_client_before_the_chain_returns(make_gateway: MakeGateway) -> None:
    hold = Hold(passes_streams_through=True)
    server = await make_gateway(hold)
    streamed = await stream_through(server, hold)
    assert streamed.head_before_release
    assert streamed.first.startswith(b"data: {") and orjson.loads(streamed.first[6:])["model"] == MODEL
    assert streamed.headers["Content-Type"] == "text/event-stream"
    assert streamed.headers["x-inferlab-tier"]  # headers the steps set before call_next are in the early head
    assert streamed.headers["x-request-id"]
    assert len(streamed.events) >= 4


async def test_a_step_that_does_not_pass_streams_through_holds_the_first_event(make_gateway: MakeGateway) -> None:
    relayed_hold, held_hold = Hold(passes_streams_through=True), Hold(passes_streams_through=False)
    relayed = await stream_through(await make_gateway(relayed_hold), relayed_hold)
    held = await stream_through(await make_gateway(held_hold), held_hold)
    assert relayed.head_before_release and not held.head_before_release
    # the client cannot tell them apart otherwise: the same events, the same headers
    assert [event["choices"] for event in relayed.events] == [event["choices"] for event in held.events]
    assert {event["model"] for event in relayed.events} == {event["model"] for event in held.events} == {MODEL}
    assert {name.lower() for name in relayed.headers} == {name.lower() for name in held.headers}


async def test_the_taps_see_the_relayed_first_event(make_gateway: MakeGateway) -> None:
    """The cache records every event of a stream it may store, the relayed first one too: the
    replay of a relayed stream is the whole stream."""
    hold = Hold(passes_streams_through=True)
    server = await make_gateway(hold, cache=True, metering=True)
    deterministic = {**BODY, "temperature": 0}  # cacheable
    streamed = await stream_through(server, hold, deterministic)
    assert streamed.head_before_release
    assert streamed.headers["x-inferlab-cache"] == "miss"
    hold.returned.clear()
    hold.release.clear()
    cached = await stream_through(server, hold, deterministic)  # a hit: the stored events, replayed
    assert cached.headers["x-inferlab-cache"] == "hit"
    assert [event["choices"] for event in cached.events] == [event["choices"] for event in streamed.events]


def test_a_route_relays_only_when_every_one_of_its_steps_passes_streams_through() -> None:
    class Watching:
        passes_streams_through = True

        async def __call__(self, call: Call, call_next: Next) -> Reply:
            return await call_next(call)

    class Rewriting:
        async def __call__(self, call: Call, call_next: Next) -> Reply:
            return await call_next(call)

    chain = Chain([Watching(), only_for([routes.COMPLETIONS], Rewriting()), Watching()])
    assert chain.relays_first(routes.CHAT)
    assert not chain.relays_first(routes.COMPLETIONS)
    assert not Chain([Rewriting()]).relays_first(routes.CHAT)
