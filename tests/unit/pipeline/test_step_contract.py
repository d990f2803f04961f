"""The step contract: whatever way a call ends — success, an engine error before or after the first
byte, the client going away mid-stream, or cancellation by the drain — every step's clean-up runs
exactly once: the limiter settles each reservation once (nothing left outstanding), the router
returns each replica lease once (no slot left in flight), and the cache stores only complete
answers (never a partial stream).

Run through the real gateway app in front of the engine simulator, with limits, cache and
routing all on; the resources are counted by wrapping the real objects' own methods.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"


@dataclass
class Ledger:
    """How often each resource was given back, per reservation / lease / cache key."""

    settled: Counter[int] = field(default_factory=Counter)
    released: Counter[int] = field(default_factory=Counter)
    stored: list[str] = field(default_factory=list)


@dataclass
class Rig:
    server: TestServer
    sim: EngineSimulator
    ledger: Ledger

    @property
    def services(self) -> Any:
        return self.server.app[SERVICES]

    def outstanding(self) -> int:
        return int(self.services.limits.admission.outstanding)

    def in_flight(self) -> int:
        return sum(replica.in_flight for replica in self.services.router.pool(MODEL).replicas)

    async def settle_down(self) -> None:
        for _ in range(100):
            if self.outstanding() == 0 and self.in_flight() == 0:
                return
            await asyncio.sleep(0.01)


def _count(owner: Any, name: str, record: Callable[..., None]) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        record(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(owner, name, counted)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sim = EngineSimulator(SimulatorScript(completion_tokens=8), model=MODEL)
    await sim.start()
    settings = Settings(
        data_dir=tmp_path,
        features={"ratelimit": True, "cache": True},
        ratelimit={"limits": [{"scope": "key", "rpm": 10_000, "max_concurrent": 50}]},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    ledger = Ledger()
    services = server.app[SERVICES]
    _count(services.limits.admission, "finish", lambda ticket, usage: ledger.settled.update([id(ticket)]))
    pool = services.router.pool(MODEL)
    _count(pool, "release", lambda lease, outcome: ledger.released.update([id(lease)]))
    _count(services.cache.cache, "put", lambda key, response: ledger.stored.append(key))
    try:
        yield Rig(server, sim, ledger)
    finally:
        await server.close()
        await sim.stop()


def body(stream: bool, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "count"}], "max_tokens": 8,
            "temperature": 0, "stream": stream, **extra}


async def post(rig: Rig, payload: dict[str, Any]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, \
            session.post(rig.server.make_url("/v1/chat/completions"), json=payload) as response:
        return response.status, await response.read()


def assert_each_once(ledger: Ledger, settled: int, released: int) -> None:
    assert sum(ledger.settled.values()) == settled and set(ledger.settled.values()) <= {1}
    assert sum(ledger.released.values()) == released and set(ledger.released.values()) <= {1}


@pytest.mark.parametrize("stream", [False, True])
async def test_success_settles_releases_and_stores_once(rig: Rig, stream: bool) -> None:
    status, raw = await post(rig, body(stream))
    assert status == 200 and (raw.endswith(b"data: [DONE]\n\n") if stream else raw.startswith(b"{"))
    await rig.settle_down()
    assert_each_once(rig.ledger, settled=1, released=1)
    assert len(rig.ledger.stored) == 1
    assert rig.outstanding() == 0 and rig.in_flight() == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_engine_error_before_the_first_byte(rig: Rig, stream: bool) -> None:
    rig.sim.script.update({"fail_status": 500, "fail_next": -1})
    status, _ = await post(rig, body(stream))
    assert status == 502
    await rig.settle_down()
    assert sum(rig.ledger.settled.values()) == 1 and set(rig.ledger.settled.values()) == {1}
    assert set(rig.ledger.released.values()) == {1}  # every attempt's lease, once
    assert rig.ledger.stored == []
    assert rig.outstanding() == 0 and rig.in_flight() == 0


async def test_engine_cut_mid_stream_stores_nothing(rig: Rig) -> None:
    rig.sim.script.update({"cut_after_tokens": 3})
    status, raw = await post(rig, body(True))
    assert status == 200 and raw.count(b'"error"') == 1 and not raw.endswith(b"data: [DONE]\n\n")
    await rig.settle_down()
    assert_each_once(rig.ledger, settled=1, released=1)
    assert rig.ledger.stored == []
    assert rig.outstanding() == 0 and rig.in_flight() == 0


async def test_client_disconnect_mid_stream(rig: Rig) -> None:
    rig.sim.script.update({"token_delay_s": 0.05, "completion_tokens": 50})
    async with aiohttp.ClientSession() as session:
        response = await session.post(rig.server.make_url("/v1/chat/completions"), json=body(True, max_tokens=50))
        assert response.status == 200
        await response.content.readline()  # the first event is out: the client goes away
        response.close()
    await rig.settle_down()
    assert_each_once(rig.ledger, settled=1, released=1)
    assert rig.ledger.stored == []
    assert rig.outstanding() == 0 and rig.in_flight() == 0


async def test_cancellation_by_the_drain(rig: Rig) -> None:
    rig.sim.script.update({"token_delay_s": 0.05, "completion_tokens": 50})
    async with aiohttp.ClientSession() as session:
        response = await session.post(rig.server.make_url("/v1/chat/completions"), json=body(True, max_tokens=50))
        await response.content.readline()
        rig.services.drain.begin()
        assert rig.services.drain.abort_all() == 1
        rest = await response.read()
    assert rest.count(b'"error"') == 1 and not rest.endswith(b"data: [DONE]\n\n")
    await rig.settle_down()
    assert_each_once(rig.ledger, settled=1, released=1)
    assert rig.ledger.stored == []
    assert rig.outstanding() == 0 and rig.in_flight() == 0
