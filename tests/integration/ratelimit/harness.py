"""Several real `inferlab serve` processes sharing one Redis, and a private Redis to stop."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from typing import Any

import aiohttp

from inferlab.testing import EngineSimulator
from inferlab.testing.gateway_process import GatewayProcess, free_port

MODEL = "sim-model"


def gateway_config(sim: EngineSimulator, redis_url: str, limits: list[dict[str, Any]], **ratelimit: Any) -> dict[str, Any]:
    return {
        "features": {"ratelimit": True},
        "redis_url": redis_url,
        "trusted_proxies": ["127.0.0.1/32"],
        "ratelimit": {"limits": limits, "redis_prefix": f"test:{uuid.uuid4().hex}:", **ratelimit},
        "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1",
                    "max_concurrency_per_replica": 2048, "queue": {"max_depth": 4096}}],
        "logging": {"level": "WARNING"},
    }


async def start_all(gateways: list[GatewayProcess]) -> None:
    await asyncio.gather(*(asyncio.to_thread(g.start) for g in gateways))


async def stop_all(gateways: list[GatewayProcess]) -> None:
    await asyncio.gather(*(asyncio.to_thread(g.stop) for g in gateways))


async def post_chat(session: aiohttp.ClientSession, url: str, client_ip: str, **extra: Any) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}
    async with session.post(url + "/v1/chat/completions", json=body,
                            headers={"X-Forwarded-For": client_ip}) as response:
        await response.read()
        return response.status


async def burst(urls: list[str], client_ip: str, count: int) -> list[int]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        return await asyncio.gather(*(post_chat(session, urls[i % len(urls)], client_ip) for i in range(count)))


class PrivateRedis:
    """A throw-away redis-server on a free port: the fault tests stop this one, never the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
