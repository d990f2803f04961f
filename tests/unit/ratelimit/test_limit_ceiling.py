"""The delegation ceiling of stored limits uses the caller's *effective* limits (configured defaults
merged with what is stored for its key, user and tenant), and only admins edit limits at all.

Configured here: every key gets 5 requests a minute and 1,000 tokens a day by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

PEPPER = "pepper-limit-ceiling-0123456789"
Client = TestClient[Any, Any]


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "ratelimit": True},
        auth={"pepper": PEPPER, "bootstrap": False, "key_cache_ttl_s": 0.1},
        ratelimit={"limits": [{"scope": "key", "rpm": 5}]},
        quota={"limits": [{"scope": "key", "daily_tokens": 1000}]},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    async with TestClient(TestServer(await create_app(settings))) as test_client:
        yield test_client


async def key_for(client: Client, role: str, name: str, tenant: str = "default") -> tuple[str, str]:
    """A fresh user of ``role`` in ``tenant`` and its key, which reaches the admin API."""
    stack = client.app[SERVICES].auth
    assert stack is not None
    if await stack.store.get_tenant(tenant) is None:
        await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
    user = await stack.admin.create_user(LOCAL_OPERATOR, name, role, tenant)
    created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                           scopes=Scopes(frozenset({"inference", "admin"})))
    return created.token, created.key.id


async def put(client: Client, key: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.put(path, json=body, headers={"Authorization": f"Bearer {key}"})
    return response.status, await response.json()


async def chats(client: Client, key: str, count: int) -> list[int]:
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    statuses = []
    for _ in range(count):
        response = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        await response.read()
        statuses.append(response.status)
    return statuses


def assert_openai_error(body: Any, code: str) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert body["error"]["type"] == "permission_error" and body["error"]["code"] == code


async def test_a_member_cannot_edit_limits_not_even_its_own(client: Client) -> None:
    member, member_id = await key_for(client, "member", "worker")
    status, body = await put(client, member, f"/admin/limits/key/{member_id}", {"rpm": 100000, "daily_tokens": 10**9})
    assert status == 403
    assert_openai_error(body, "insufficient_role")
    assert await chats(client, member, 6) == [200] * 5 + [429]  # the configured default still applies
    # reading its own limits stays allowed
    response = await client.get(f"/admin/limits/key/{member_id}", headers={"Authorization": f"Bearer {member}"})
    assert response.status == 200


async def test_a_tenant_admin_cannot_grant_above_its_effective_limits(client: Client) -> None:
    admin, admin_id = await key_for(client, "tenant-admin", "boss")
    member, member_id = await key_for(client, "member", "worker")
    for path, body in [(f"/admin/limits/key/{admin_id}", {"rpm": 100000}),
                       (f"/admin/limits/key/{member_id}", {"rpm": 6}),
                       (f"/admin/limits/key/{member_id}", {"daily_tokens": 1001}),
                       ("/admin/limits/tenant/default", {"rpm": 50})]:
        status, refused = await put(client, admin, path, body)
        assert status == 403, (path, body)
        assert_openai_error(refused, "limit_above_own")
        assert next(iter(body)) in refused["error"]["message"]
    assert await chats(client, admin, 6) == [200] * 5 + [429]  # its own key kept the default

    status, granted = await put(client, admin, f"/admin/limits/key/{member_id}", {"rpm": 2, "daily_tokens": 1000})
    assert status == 200 and granted["rpm"] == 2
    assert await chats(client, member, 3) == [200, 200, 429]


async def test_resetting_to_the_default_cannot_lift_a_tighter_stored_limit(client: Client) -> None:
    root, _ = await key_for(client, "platform-admin", "root")
    admin, _ = await key_for(client, "tenant-admin", "boss", tenant="acme")
    member, member_id = await key_for(client, "member", "worker", tenant="acme")
    assert (await put(client, root, "/admin/limits/tenant/acme", {"rpm": 3}))[0] == 200
    status, body = await put(client, admin, "/admin/limits/tenant/acme", {})  # null: back to "no tenant limit"
    assert status == 403
    assert_openai_error(body, "limit_above_own")
    # a null field whose result stays under the ceiling is fine: the member is still held by the tenant's 3
    status, body = await put(client, admin, f"/admin/limits/key/{member_id}", {"tpm": 100})
    assert status == 200 and body["rpm"] is None
    assert await chats(client, member, 4) == [200, 200, 200, 429]


async def test_a_tenant_admin_cannot_touch_a_higher_role_s_limits(client: Client) -> None:
    _, root_id = await key_for(client, "platform-admin", "root")
    admin, _ = await key_for(client, "tenant-admin", "boss")
    status, body = await put(client, admin, f"/admin/limits/key/{root_id}", {"rpm": 1})
    assert status == 403
    assert_openai_error(body, "delegation_ceiling")


async def test_platform_admins_set_limits_above_the_configured_defaults(client: Client) -> None:
    root, _ = await key_for(client, "platform-admin", "root")
    member, member_id = await key_for(client, "member", "worker")
    assert (await put(client, root, f"/admin/limits/key/{member_id}", {"rpm": 8}))[0] == 200
    assert await chats(client, member, 9) == [200] * 8 + [429]
