"""The gateway in-process in front of several engine simulators, for pool-level tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"


class Cluster:
    def __init__(self, sims: list[EngineSimulator], server: TestServer, http: aiohttp.ClientSession) -> None:
        self.sims = sims
        self.server = server
        self.http = http

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def chat(self, content: str = "hello", *, system: str | None = None, stream: bool = False,
                   max_tokens: int = 4, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": stream}
        async with self.http.post(self.url("/v1/chat/completions"), json=body, headers=headers) as response:
            raw = await response.read()
            if stream and response.status == 200:
                events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
                return response.status, events, dict(response.headers)
            return response.status, orjson.loads(raw), dict(response.headers)

    async def backends(self) -> dict[str, Any]:
        async with self.http.get(self.url("/admin/backends")) as response:
            assert response.status == 200
            pools: dict[str, Any] = orjson.loads(await response.read())["data"][0]
            return pools

    def served(self) -> list[int]:
        return [sim.requests_total for sim in self.sims]


@contextlib.asynccontextmanager
async def cluster(count: int, *, scripts: list[SimulatorScript] | None = None,
                  **model: Any) -> AsyncIterator[Cluster]:
    sims = [EngineSimulator(scripts[i] if scripts else SimulatorScript(completion_tokens=4), model=MODEL)
            for i in range(count)]
    urls = [await sim.start() + "/v1" for sim in sims]
    config: dict[str, Any] = {"name": MODEL, "backend": "openai", "urls": urls, "engine": "vllm"}
    for key, value in model.items():
        config[key] = value
    settings = load_settings(overrides={"models": [config], "upstream": {"read_timeout_s": 10.0}})
    server = TestServer(await create_app(settings))
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        yield Cluster(sims, server, http)
    finally:
        await http.close()
        await server.close()
        for sim in sims:
            await sim.stop()
