"""Limits stored per key, user and tenant: set through the admin API (never above your own),
enforced by the gateway, and set at key creation by the CLI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from inferlab.app import GATEWAY, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth import cli as auth_cli
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

PEPPER = "pepper-stored-limits-0123456789"
Client = TestClient[Any, Any]


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "ratelimit": True},
        auth={"pepper": PEPPER, "bootstrap": False, "key_cache_ttl_s": 0.1},
        ratelimit={"limits": [{"scope": "tenant", "rpm": 1000}]},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    async with TestClient(TestServer(await create_app(settings))) as test_client:
        yield test_client


async def key_for(client: Client, role: str, name: str) -> tuple[str, str]:
    stack = client.app[GATEWAY].auth
    assert stack is not None
    user = await stack.admin.create_user(LOCAL_OPERATOR, name, role)  # type: ignore[arg-type]
    created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                           scopes=Scopes(frozenset({"inference", "admin"})))
    return created.token, created.key.id


async def call(client: Client, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    return response.status, await response.json()


async def chat(client: Client, key: str) -> int:
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    response = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    await response.read()
    return response.status


async def test_a_stored_key_limit_is_enforced(client: Client) -> None:
    admin, _ = await key_for(client, "tenant-admin", "boss")
    member, member_id = await key_for(client, "member", "worker")
    status, body = await call(client, admin, "PUT", f"/admin/limits/key/{member_id}", {"rpm": 2})
    assert status == 200 and body["rpm"] == 2 and body["tpm"] is None
    assert [await chat(client, member) for _ in range(3)] == [200, 200, 429]
    assert await chat(client, admin) == 200  # the tenant default (1,000) still applies to others
    status, body = await call(client, member, "GET", f"/admin/limits/key/{member_id}")
    assert status == 200 and body["rpm"] == 2


async def test_nobody_grants_limits_above_their_own(client: Client) -> None:
    admin, admin_id = await key_for(client, "tenant-admin", "boss")
    member, member_id = await key_for(client, "member", "worker")
    assert (await call(client, admin, "PUT", f"/admin/limits/key/{admin_id}", {"rpm": 10}))[0] == 200
    status, body = await call(client, admin, "PUT", f"/admin/limits/key/{member_id}", {"rpm": 11})
    assert status == 403 and body["error"]["code"] == "limit_above_own"
    assert (await call(client, admin, "PUT", f"/admin/limits/key/{member_id}", {"rpm": 10}))[0] == 200
    # a member changes no limits: not its own, nor another user's, nor the tenant's (403 whatever the target)
    assert (await call(client, member, "PUT", f"/admin/limits/key/{member_id}", {"rpm": 50}))[0] == 403
    assert (await call(client, member, "PUT", f"/admin/limits/key/{admin_id}", {"rpm": 5}))[0] == 403
    assert (await call(client, member, "PUT", "/admin/limits/tenant/default", {"rpm": 5}))[0] == 403
    assert (await call(client, member, "GET", f"/admin/limits/key/{admin_id}"))[0] == 404
    assert (await call(client, admin, "PUT", "/admin/limits/bogus/x", {"rpm": 5}))[0] == 404
    assert (await call(client, admin, "PUT", f"/admin/limits/key/{member_id}", {"rpm": -1}))[0] == 400


def test_cli_creates_a_key_with_limits(tmp_path: Path) -> None:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    auth_cli.register(root)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(root, [*args, "--data-dir", str(tmp_path)], catch_exceptions=False,
                               env={"INFERLAB_AUTH__PEPPER": PEPPER})
        assert result.exit_code == 0, result.output
        return result.stdout

    run("users", "create", "carol")
    key = run("keys", "create", "--user", "carol", "--rpm", "7", "--tpm", "700", "--max-concurrent", "2").strip()
    listed = [json.loads(line) for line in run("keys", "list").splitlines()]
    assert key.startswith("il-") and listed[0]["id"] == key.split("-")[1]

    import asyncio

    from inferlab.ratelimit.policy import Overrides
    from inferlab.store import Database, database_url
    from inferlab.store.audit import SqlAuditStore
    from inferlab.store.limits import SqlLimitStore

    async def stored() -> tuple[dict[Any, Overrides], list[tuple[str, str, str | None]]]:
        database = Database(database_url(tmp_path, None))
        try:
            events = await SqlAuditStore(database).list(tenant_id=None, limit=10)
            return (await SqlLimitStore(database).get_many([("key", listed[0]["id"])]),
                    [(e.action, e.actor_source, e.actor_user_id) for e in reversed(events)])
        finally:
            await database.close()

    limits, audited = asyncio.run(stored())
    assert limits == {("key", listed[0]["id"]): Overrides(rpm=7, tpm=700, max_concurrent=2)}
    assert audited == [(action, "local", "local-operator") for action in ("user.create", "key.create", "limits.set")]
