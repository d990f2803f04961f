"""An in-process gateway with auth on, in front of the engine simulator, and key factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.auth.stack import AuthStack
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

CANARY_PEPPER = "pepper-canary-0123456789abcdef"

MakeKey = Callable[..., Awaitable[str]]


def auth_settings(tmp_path: Path, sim_url: str, *, server: dict[str, Any] | None = None, **auth: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        server=server or {},
        features={"auth": True, "planning_api": True},  # every optional route family
        auth={"pepper": CANARY_PEPPER, "bootstrap": False, **auth},
        billing={"enabled": True, "jobs": False},  # its routes: customer, admin and the Stripe webhook
        anomaly={"enabled": True, "backfill_s": 0},  # GET /admin/anomalies
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim_url}/v1"},
                {"name": "other-model", "backend": "openai", "url": f"{sim_url}/v1", "served_name": "sim-model"}],
    )


@pytest.fixture
def settings_with(sim: EngineSimulator, tmp_path: Path) -> Callable[..., Settings]:
    """The ``client`` fixture's settings with some changed: ``settings_with(protect_metrics=True)``,
    ``settings_with(server={"docs": False})``."""
    assert sim.base_url is not None
    url = sim.base_url
    return lambda **changes: auth_settings(tmp_path, url, **changes)


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    assert sim.base_url is not None
    app = await create_app(auth_settings(tmp_path, sim.base_url))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def stack(client: TestClient[Any, Any]) -> AuthStack:
    auth = client.app[SERVICES].auth
    assert auth is not None
    return auth


def key_maker(stack: AuthStack) -> MakeKey:
    """``await make(role=..., groups=..., models=..., tenant=...)`` → a fresh user's key in this stack."""
    counter = iter(range(1_000_000))

    async def make(role: str = "member", groups: tuple[str, ...] = ("inference",), models: tuple[str, ...] | None = None,
                   tenant: str = "default", expires_at: Any = None, name: str | None = None) -> str:
        if await stack.store.get_tenant(tenant) is None:
            await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
        user = await stack.admin.create_user(LOCAL_OPERATOR, name or f"user{next(counter)}", role, tenant)  # type: ignore[arg-type]
        created = await stack.admin.create_key(
            LOCAL_OPERATOR, name="test", user_id=user.id,
            scopes=Scopes(frozenset(groups), None if models is None else frozenset(models)), expires_at=expires_at,
        )
        return created.token

    return make


@pytest.fixture
def make_key(stack: AuthStack) -> MakeKey:
    """``await make_key(role=..., groups=..., models=..., tenant=...)`` → a fresh user's key."""
    return key_maker(stack)


@pytest.fixture
def keys_for() -> Callable[[web.Application], MakeKey]:
    """``keys_for(app)``: ``make_key`` for an app a test built itself (started: its store is open)."""

    def for_app(app: web.Application) -> MakeKey:
        stack = app[SERVICES].auth
        assert stack is not None
        return key_maker(stack)

    return for_app
