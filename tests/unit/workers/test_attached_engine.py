"""An engine the supervisor runs, seen from a worker: ready while its /health answers 200 with the
engine's key, restarting (counted) while it does not, and never started, signalled or stopped."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.coordinator.attached import AttachedEngine, EngineHandoff
from inferlab.coordinator.engine_process import EngineState
from inferlab.coordinator.locate import EngineCommand


class Seen:
    def __init__(self) -> None:
        self.up: list[bool] = []
        self.restarts = 0
        self.restarted = asyncio.Event()

    def engine_up_changed(self, engine: str, up: bool) -> None:
        self.up.append(up)

    def engine_restarted(self, engine: str) -> None:
        self.restarts += 1
        self.restarted.set()


async def test_follows_the_engines_health() -> None:
    healthy = True
    keys: list[str | None] = []

    async def health(request: web.Request) -> web.Response:
        keys.append(request.headers.get("Authorization"))
        return web.json_response({"status": "ok"}, status=200 if healthy else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    server = TestServer(app)
    await server.start_server()
    seen = Seen()
    command = EngineCommand("llama-server", ("llama-server",), "/health", "engine-key")
    async with aiohttp.ClientSession() as session:
        engine = AttachedEngine(EngineHandoff("m", server.port or 0, command), session, observer=seen,
                                logger=logging.getLogger("test"), interval_s=0.05)
        assert engine.url == f"http://127.0.0.1:{server.port}" and engine.pid is None
        engine.start()
        assert await engine.wait_ready(5) and engine.state is EngineState.READY
        healthy = False
        await asyncio.wait_for(seen.restarted.wait(), 5)
        assert engine.state is EngineState.RESTARTING and engine.restarts == 1 and seen.restarts == 1
        healthy = True
        assert await engine.wait_ready(5)
        await engine.stop()
        assert engine.state is EngineState.STOPPED
    await server.close()
    assert seen.up == [True, False, True] and set(keys) == {"Bearer engine-key"}
