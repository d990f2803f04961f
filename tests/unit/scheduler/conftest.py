"""A gateway with auth on, in front of the engine simulator, whose one model has few replica slots so
that requests queue; tenants on the shipped tiers (free: low, pro: normal, enterprise: high) and on
two configured ones of one class with weights 3 and 1 (gold, silver)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.router import BackendPool
from inferlab.services import Services
from inferlab.testing import EngineSimulator

PEPPER = "pepper-scheduler-0123456789abcdef"
MODEL = "sim-model"
TIERS: list[dict[str, Any]] = [
    {"name": "gold", "priority": "normal", "weight": 3},
    {"name": "silver", "priority": "normal", "weight": 1},
]
Client = TestClient[Any, Any]


def words(count: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": " ".join(["word"] * count)}]


@dataclass
class Gateway:
    client: Client
    sim: EngineSimulator
    keys: dict[str, str] = field(default_factory=dict)  # tenant -> key

    @property
    def services(self) -> Services:
        return self.client.app[SERVICES]

    @property
    def pool(self) -> BackendPool:
        return self.services.router.pool(MODEL)

    def queue(self) -> dict[str, Any]:
        return self.services.queues.snapshot(self.pool)

    async def tenant(self, tenant_id: str, tier: str) -> str:
        admin = self.services.admin
        assert admin is not None
        await admin.tenant_admin.create(LOCAL_OPERATOR, tenant_id, tier=tier)
        user = await admin.auth.admin.create_user(LOCAL_OPERATOR, f"{tenant_id}-user", "member", tenant_id)
        created = await admin.auth.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                                    scopes=Scopes(frozenset({"inference"})))
        self.keys[tenant_id] = created.token
        return created.token

    async def chat(self, tenant: str, *, prompt_words: int = 3, max_tokens: int = 8, stream: bool = False,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        body = {"model": MODEL, "messages": words(prompt_words), "max_tokens": max_tokens, "stream": stream}
        response = await self.client.post("/v1/chat/completions", json=body, headers={
            "Authorization": f"Bearer {self.keys[tenant]}", **(headers or {})})
        payload = await response.json() if not stream or response.status != 200 else await response.text()
        return response.status, payload, dict(response.headers)

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.005)

    async def queued(self, depth: int) -> None:
        await self.until(lambda: self.queue()["depth"] == depth)


MakeGateway = Callable[..., Awaitable[Gateway]]


def settings_for(data_dir: Path, sim_url: str, *, slots: int, queue: dict[str, Any] | None = None,
                 model: dict[str, Any] | None = None, **changes: Any) -> Settings:
    return Settings(**{
        "data_dir": data_dir,
        "features": {"auth": True},
        "auth": {"pepper": PEPPER, "bootstrap": False},
        "tenants": {"tiers": TIERS},
        "models": [{"name": MODEL, "backend": "openai", "url": f"{sim_url}/v1", "max_concurrency_per_replica": slots,
                    "queue": queue or {}, **(model or {})}],
        **changes,
    })


@pytest.fixture
async def make_gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(slots=1, queue={...}, model={...}, **settings)``: a started gateway (handlers are
    cancelled when their client goes away, as under ``inferlab serve``)."""
    clients: list[Client] = []
    assert sim.base_url is not None
    url = sim.base_url

    async def make(*, slots: int = 1, queue: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                   **changes: Any) -> Gateway:
        app = await create_app(settings_for(tmp_path, url, slots=slots, queue=queue, model=model, **changes))
        client: Client = TestClient(TestServer(app, handler_cancellation=True))
        await client.start_server()
        clients.append(client)
        return Gateway(client, sim)

    yield make
    for client in reversed(clients):
        await client.close()
