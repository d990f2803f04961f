"""``GET /admin/anomalies`` through a real gateway, on SQLite and on PostgreSQL: the incidents a
detector sharing the gateway's store opened (open first, then the recent closed), with evidence;
platform admins only; bad parameters are OpenAI-shaped 400s; the route is in the admin OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.anomaly.service import AnomalyDetector
from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.store.anomalies import SqlIncidentStore, SqlUsageWindows
from inferlab.store.usage import SqlUsageStore
from inferlab.testing import EngineSimulator
from inferlab.testing.needs import migrated_postgres_database

from .ledger import end_of, events, settings

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
Client = TestClient[Any, Any]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_anomaly") as name:
        yield f"{PG}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class Gateway:
    client: Client
    tokens: dict[str, str]
    peer: AnomalyDetector

    async def get(self, who: str, path: str) -> tuple[int, Any]:
        answer = await self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        return answer.status, await answer.json()


@pytest.fixture
async def gateway(sim: EngineSimulator, tmp_path: Path, database_url: str) -> AsyncIterator[Gateway]:
    app = await create_app(Settings(
        data_dir=tmp_path, database_url=database_url, features={"auth": True},
        auth={"pepper": "p" * 32, "bootstrap": False}, anomaly={"enabled": True, "backfill_s": 0, "interval_s": 3600},
        models=[{"name": "m", "backend": "openai", "url": f"{sim.base_url}/v1"}]))
    async with TestClient(TestServer(app)) as client:
        admin = client.app[SERVICES].admin
        assert admin is not None
        stack = admin.auth
        if await stack.store.get_tenant("acme") is None:
            await stack.store.add_tenant(Tenant("acme", "acme", datetime.now(UTC)))
        tokens = {}
        for who, tenant, role in (("admin", "default", "platform-admin"), ("tenant-admin", "acme", "tenant-admin")):
            user = await stack.admin.create_user(LOCAL_OPERATOR, f"u-{who}-{id(client)}", role, tenant)  # type: ignore[arg-type]
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                                   scopes=Scopes(frozenset({"inference", "admin"})))
            tokens[who] = created.token
        database = stack.database
        if database.dialect == "postgresql":  # the session's database: this test's rows only
            from sqlalchemy import text

            async with database.engine.begin() as connection:
                await connection.execute(text("TRUNCATE usage_events, usage_hourly, usage_daily, anomaly_incidents"))
        await SqlUsageStore(database).insert_batch(events(range(45), slow=range(30, 36)))
        peer = AnomalyDetector(SqlUsageWindows(database), SqlIncidentStore(database), settings(),
                               logging.getLogger("test.anomaly"))  # another gateway's detector, same store
        for interval in range(38):  # r2 slow 30–35: opened; closed at 38 after 3 quiet intervals
            await peer.tick(end_of(interval))
        yield Gateway(client, tokens, peer)


async def test_platform_admins_see_the_incidents_with_their_evidence(gateway: Gateway) -> None:
    status, body = await gateway.get("admin", "/admin/anomalies?state=open")
    assert status == 200, body
    keys = [incident["key"] for incident in body["data"]]
    assert "replica_ttft_ms:replica=m/r2" in keys and body["open"] == len(keys)
    (slow,) = [i for i in body["data"] if i["key"] == "replica_ttft_ms:replica=m/r2"]
    assert slow["state"] == "open" and slow["subject"] == {"scope": "replica", "name": "r2", "model": "m"}
    assert slow["evidence"]["peak"]["z"] > 6 and slow["evidence"]["peak"]["value"] > 150
    assert slow["opened_at"].startswith("2026-03-02T00:3")


async def test_closed_incidents_follow_the_open_ones(gateway: Gateway) -> None:
    for interval in range(38, 45):  # r2 is back to normal: its incident closes after the quiet period
        await gateway.peer.tick(end_of(interval))
    status, everything = await gateway.get("admin", "/admin/anomalies")
    assert status == 200
    states = [incident["state"] for incident in everything["data"]]
    assert states == sorted(states, key=lambda s: s != "open") and "closed" in states  # open first
    (slow,) = [i for i in everything["data"] if i["key"] == "replica_ttft_ms:replica=m/r2"]
    assert slow["state"] == "closed" and slow["closed_at"] > slow["last_seen_at"] >= slow["opened_at"]
    status, still_open = await gateway.get("admin", "/admin/anomalies?state=open")
    assert "replica_ttft_ms:replica=m/r2" not in [i["key"] for i in still_open["data"]]
    assert everything["quiet_intervals"] == 3 and everything["interval_s"] == 3600


async def test_only_platform_admins_and_only_known_parameters(gateway: Gateway) -> None:
    status, body = await gateway.get("tenant-admin", "/admin/anomalies")
    assert status == 403 and body["error"]["type"] in ("permission_error", "authentication_error")
    for query, param in (("state=sideways", "state"), ("limit=5", "limit")):
        status, body = await gateway.get("admin", f"/admin/anomalies?{query}")
        assert status == 400 and body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == param


async def test_the_route_is_in_the_admin_openapi_document(gateway: Gateway) -> None:
    status, document = await gateway.get("admin", "/admin/openapi.json")
    assert status == 200
    operation = document["paths"]["/admin/anomalies"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["state"]


async def test_the_dashboards_anomalies_page_lists_the_incidents(gateway: Gateway) -> None:
    import re

    form = await (await gateway.client.get("/ui/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    signed = await gateway.client.post("/ui/login", data={"credential": gateway.tokens["admin"],
                                                          "csrf_token": token.group(1), "next": ""})
    assert signed.status == 200 and signed.url.path == "/ui/admin/"
    page = await gateway.client.get("/ui/admin/anomalies")
    text = await page.text()
    assert page.status == 200 and "replica_ttft_ms" in text and "replica=m/r2" in text
    assert "Anomaly detection off" not in text
