"""``Idempotency-Key`` through the real gateway (auth on, SQLite and PostgreSQL stores): a write
repeated with the same key runs once and is replayed; another body with the key is 422; a repeat
while the first runs is 409; two tenants using the same key string never meet; inference is out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.idempotency import Claimed
from inferlab.idempotency.service import fingerprint, scope_of
from inferlab.testing import EngineSimulator
from inferlab.testing.needs import migrated_postgres_database
from inferlab.testing.tcp_proxy import TcpProxy

Client = TestClient[Any, Any]
ADMIN = ("inference", "admin")


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with migrated_postgres_database("inferlab_idempotency") as name:
        yield name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the data directory's SQLite file
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{request.getfixturevalue('pg_database')}"


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path, database_url: str | None) -> AsyncIterator[Client]:
    assert sim.base_url is not None
    settings = Settings(data_dir=tmp_path, database_url=database_url, features={"auth": True},
                        auth={"pepper": "pepper-idempotency-0123456789", "bootstrap": False},
                        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}])
    app = await create_app(settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def admin_key(client: Client, tenant: str) -> str:
    """A fresh tenant-admin in ``tenant`` (created if new) and their key."""
    stack = client.app[SERVICES].auth
    assert stack is not None
    if await stack.store.get_tenant(tenant) is None:
        await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
    user = await stack.admin.create_user(LOCAL_OPERATOR, f"admin-{tenant}-{datetime.now(UTC).timestamp()}",
                                         "tenant-admin", tenant)
    created = await stack.admin.create_key(LOCAL_OPERATOR, name="admin", user_id=user.id,
                                           scopes=Scopes(frozenset(ADMIN), None))
    return str(created.token)


def headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return {"Authorization": f"Bearer {key}", **extra}


async def key_names(client: Client, key: str) -> list[str]:
    response = await client.get("/admin/keys", params={"limit": "100"}, headers=headers(key))
    assert response.status == 200
    return [k["name"] for k in (await response.json())["data"]]


async def test_a_repeated_create_runs_once_and_replays(client: Client) -> None:
    admin = await admin_key(client, "acme")
    first = await client.post("/admin/keys", json={"name": "ci"}, headers=headers(admin, "create-ci-1"))
    assert first.status == 201 and "idempotent-replayed" not in first.headers
    body = await first.read()
    again = await client.post("/admin/keys", json={"name": "ci"}, headers=headers(admin, "create-ci-1"))
    assert again.status == 201 and again.headers["idempotent-replayed"] == "true"
    assert await again.read() == body  # the same key, secret included: it was shown once, to this caller
    assert again.headers["Content-Type"].startswith("application/json")
    assert (await key_names(client, admin)).count("ci") == 1
    third = await client.post("/admin/keys", json={"name": "ci"}, headers=headers(admin, "create-ci-2"))
    assert third.status == 201 and (await key_names(client, admin)).count("ci") == 2  # a new key: a new key


async def test_another_request_with_the_key_is_refused(client: Client) -> None:
    admin = await admin_key(client, "acme")
    assert (await client.post("/admin/keys", json={"name": "a"}, headers=headers(admin, "k-1"))).status == 201
    reused = await client.post("/admin/keys", json={"name": "b"}, headers=headers(admin, "k-1"))
    assert reused.status == 422
    error = (await reused.json())["error"]
    assert error["code"] == "idempotency_key_reused" and error["type"] == "invalid_request_error"
    assert error["param"] == "Idempotency-Key"
    other_path = await client.post("/admin/users", json={"name": "a"}, headers=headers(admin, "k-1"))
    assert other_path.status == 422
    assert "b" not in await key_names(client, admin)


async def test_refusals_are_replayed_too(client: Client) -> None:
    admin = await admin_key(client, "acme")
    bad = await client.post("/admin/users", json={"name": "x", "role": "emperor"}, headers=headers(admin, "bad-1"))
    assert bad.status == 400
    again = await client.post("/admin/users", json={"name": "x", "role": "emperor"}, headers=headers(admin, "bad-1"))
    assert again.status == 400 and again.headers["idempotent-replayed"] == "true"
    assert await again.json() == await bad.json()


async def test_a_repeat_while_the_first_runs_is_409(client: Client) -> None:
    """Another replica holds the key (claimed, no answer yet): this one answers 409 + Retry-After."""
    admin = await admin_key(client, "acme")
    principal = await client.app[SERVICES].admin.auth.service.authenticate(admin)
    idempotency = client.app[SERVICES].idempotency
    assert idempotency is not None
    body = b'{"name": "slow"}'
    held = await idempotency.begin(scope_of(principal), "busy-1", fingerprint("POST", "/admin/keys", body))
    assert isinstance(held, Claimed) and held.at is not None
    busy = await client.post("/admin/keys", data=body, headers={**headers(admin, "busy-1"),
                                                                "Content-Type": "application/json"})
    assert busy.status == 409 and busy.headers["Retry-After"] == "1"
    assert (await busy.json())["error"]["code"] == "idempotency_key_in_use"
    await idempotency.release(scope_of(principal), "busy-1", held.at)  # the other replica's request failed (5xx)
    retried = await client.post("/admin/keys", data=body, headers={**headers(admin, "busy-1"),
                                                                   "Content-Type": "application/json"})
    assert retried.status == 201 and "idempotent-replayed" not in retried.headers


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_concurrent_requests_with_one_key_run_once(client: Client, database_url: str | None) -> None:
    """Two requests at once: the users table is locked, so the first is still running when the
    second arrives — 409 for it; once the lock goes the first finishes and a retry replays it.
    PostgreSQL only: the table lock is what holds the first request inside its handler."""
    assert database_url is not None
    admin = await admin_key(client, "acme")
    locker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE users IN EXCLUSIVE MODE")
        first = asyncio.ensure_future(client.post("/admin/users", json={"name": "once"},
                                                  headers=headers(admin, "race-1")))
        await asyncio.sleep(0.5)  # the first has claimed the key and waits on the lock
        second = await client.post("/admin/users", json={"name": "once"}, headers=headers(admin, "race-1"))
        assert second.status == 409
        await lock.rollback()
        created = await first
        assert created.status == 201
        replayed = await client.post("/admin/users", json={"name": "once"}, headers=headers(admin, "race-1"))
        assert replayed.status == 201 and replayed.headers["idempotent-replayed"] == "true"
        assert (await replayed.json())["id"] == (await created.json())["id"]
    finally:
        await locker.close()
    users = await client.get("/admin/users", params={"limit": "100"}, headers=headers(admin))
    assert [u["name"] for u in (await users.json())["data"]].count("once") == 1


async def test_tenants_keys_are_independent(client: Client) -> None:
    acme, globex = await admin_key(client, "acme"), await admin_key(client, "globex")
    a = await client.post("/admin/users", json={"name": "alice"}, headers=headers(acme, "shared-key"))
    b = await client.post("/admin/users", json={"name": "bob"}, headers=headers(globex, "shared-key"))
    assert a.status == 201 and b.status == 201 and "idempotent-replayed" not in b.headers
    assert (await a.json())["tenant_id"] == "acme" and (await b.json())["tenant_id"] == "globex"
    again = await client.post("/admin/users", json={"name": "bob"}, headers=headers(globex, "shared-key"))
    assert again.headers["idempotent-replayed"] == "true" and (await again.json())["name"] == "bob"


async def test_malformed_keys_are_400(client: Client) -> None:
    admin = await admin_key(client, "acme")
    for bad in ("x" * 256, "tab\there"):
        response = await client.post("/admin/keys", json={"name": "n"}, headers=headers(admin, bad))
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_idempotency_key"
    assert "n" not in await key_names(client, admin)
    longest = await client.post("/admin/keys", json={"name": "n"}, headers=headers(admin, "y" * 255))
    assert longest.status == 201


async def test_inference_routes_ignore_the_key(client: Client) -> None:
    admin = await admin_key(client, "acme")
    chat = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json=chat, headers=headers(admin, "chat-1"))
        assert response.status == 200 and "idempotent-replayed" not in response.headers


@pytest.mark.postgres
async def test_a_paused_store_at_the_claim_is_a_bounded_503_and_the_key_stays_usable(
        sim: EngineSimulator, tmp_path: Path, pg_database: str) -> None:
    """PostgreSQL through a pausable proxy: the claim cannot be made, so the write does not run —
    503 + Retry-After within the store's timeout, never a 500; once the store is back the same
    key runs the write once."""
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    assert sim.base_url is not None
    settings = Settings(data_dir=tmp_path, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/"
                        f"{pg_database}", features={"auth": True},
                        auth={"pepper": "pepper-idempotency-0123456789", "bootstrap": False, "store_timeout_s": 0.5,
                              "store_retry_s": 0.2, "outage_grace_s": 60},
                        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}])
    try:
        async with TestClient(TestServer(await create_app(settings))) as client:
            admin = await admin_key(client, "acme")
            assert len(await key_names(client, admin)) >= 1  # the key validated: it outlives a short outage
            proxy.pause()
            started = time.monotonic()
            down = await client.post("/admin/users", json={"name": "later"}, headers=headers(admin, "outage-1"))
            elapsed = time.monotonic() - started
            assert down.status == 503 and "Retry-After" in down.headers and elapsed < 3.0
            proxy.resume()
            for _ in range(30):  # the store's guard retries every store_retry_s
                back = await client.post("/admin/users", json={"name": "later"}, headers=headers(admin, "outage-1"))
                if back.status != 503:
                    break
                await asyncio.sleep(0.2)
            assert back.status == 201 and "idempotent-replayed" not in back.headers
            again = await client.post("/admin/users", json={"name": "later"}, headers=headers(admin, "outage-1"))
            assert again.headers["idempotent-replayed"] == "true"
    finally:
        await proxy.stop()
