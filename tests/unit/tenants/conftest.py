"""A gateway with auth, rate limits and the planning API on, tiers configured, in front of the
engine simulator; tenants on a tier and their keys made through the real admin services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.services import AdminServices
from inferlab.testing import EngineSimulator

PEPPER = "pepper-tenants-0123456789abcdef"
TTL_S = 0.3
TIERS: list[dict[str, Any]] = [
    # one model, no streaming, embeddings, code nor planning; small caps, refused above them
    {"name": "basic", "models": ["sim-model"], "features": ["cache"], "max_tokens": 50, "max_context_tokens": 300},
    # every model, streaming only; caps clamped
    {"name": "squeeze", "features": ["streaming"], "max_tokens": 20, "max_context_tokens": 100, "over_cap": "clamp"},
    # two requests a minute for the whole tenant
    {"name": "metered", "tenant_limits": {"rpm": 2}},
]
Client = TestClient[Any, Any]


def tier_settings(data_dir: Path, sim_url: str, **changes: Any) -> Settings:
    return Settings(**{
        "data_dir": data_dir,
        "features": {"auth": True, "planning_api": True, "ratelimit": True},
        "auth": {"pepper": PEPPER, "bootstrap": False, "key_cache_ttl_s": TTL_S},
        "tenants": {"tiers": TIERS},
        "models": [{"name": "sim-model", "backend": "openai", "url": f"{sim_url}/v1"},
                   {"name": "pro-model", "backend": "openai", "url": f"{sim_url}/v1", "served_name": "sim-model"}],
        **changes,
    })


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Gateway:
    client: Client
    sim: EngineSimulator
    root: str  # a platform admin's key, in the default tenant

    @property
    def admin(self) -> AdminServices:
        admin = self.client.app[SERVICES].admin
        assert admin is not None
        return admin

    async def tenant(self, tenant_id: str, tier: str | None = None, **overrides: Any) -> None:
        """A tenant on ``tier`` (None: the default tier), unless it exists."""
        if await self.admin.auth.store.get_tenant(tenant_id) is None:
            await self.admin.tenant_admin.create(LOCAL_OPERATOR, tenant_id, tier=tier, overrides=overrides or None)

    async def key(self, tenant_id: str, role: str = "member", groups: tuple[str, ...] = ("inference",),
                  models: tuple[str, ...] | None = None) -> str:
        """A key of a new user of the tenant (which must exist)."""
        stack = self.admin.auth
        user = await stack.admin.create_user(LOCAL_OPERATOR, f"user{len(self._users)}", role, tenant_id)  # type: ignore[arg-type]
        self._users.append(user.id)
        created = await stack.admin.create_key(
            LOCAL_OPERATOR, name="test", user_id=user.id,
            scopes=Scopes(frozenset(groups), None if models is None else frozenset(models)))
        return created.token

    async def call(self, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        response = await self.client.request(method, path, json=body, headers=h(key))
        payload = await response.json() if response.status != 204 else None
        return response.status, payload, dict(response.headers)

    def __post_init__(self) -> None:
        self._users: list[str] = []


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(data_dir=..., **settings)``: a started gateway; several may share a data
    directory (one SQLite store), like replicas."""
    clients: list[Client] = []
    assert sim.base_url is not None
    url = sim.base_url

    async def make(data_dir: Path | None = None, **changes: Any) -> Gateway:
        app = await create_app(tier_settings(data_dir or tmp_path, url, **changes))
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        stack = app[SERVICES].auth
        assert stack is not None
        root = await stack.admin.create_user(LOCAL_OPERATOR, f"root{len(clients)}", "platform-admin")
        created = await stack.admin.create_key(
            LOCAL_OPERATOR, name="root", user_id=root.id, scopes=Scopes(frozenset({"inference", "admin", "billing"})))
        return Gateway(client, sim, created.token)

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> Gateway:
    return await make_gateway()
