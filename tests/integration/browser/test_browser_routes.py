"""The browser hybrid's server side, in process, with keys and the usage ledger on (SQLite) and the
engine simulator behind the fallback: the catalogue, the model file served by ranges with its
caching and cross-origin headers, local usage reports (idempotent, paced, checked, tenant-scoped)
landing in the ledger marked local, and the tiers' server-fallback policy."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth.model import LOCAL_OPERATOR, Scopes
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.testing import EngineSimulator

PEPPER = "browser-routes-pepper-0123456789"
MODEL = "smollm2-135m"
SERVER_MODEL = "sim-model"  # the simulator answers to its own name: the browser model falls back to it


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path, smollm2_gguf: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "browser": True},
        auth={"pepper": PEPPER, "bootstrap": False}, metering={"ship_interval_s": 0.05},
        tenants={"tiers": [{"name": "basic"}]},
        browser={"models": [{"name": MODEL, "server_model": SERVER_MODEL}], "server_fallback_tiers": ["enterprise"],
                 "reports_burst": 4, "reports_per_minute": 6, "client_dir": str(tmp_path / "no-client-built")},
        models=[{"name": SERVER_MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    test_client: TestClient[Any, Any] = TestClient(TestServer(await create_app(settings)))
    await test_client.start_server()
    yield test_client
    await test_client.close()


@pytest.fixture(scope="module")
def gguf(smollm2_gguf: Path) -> bytes:
    return smollm2_gguf.read_bytes()


async def key_of(client: TestClient[Any, Any], tenant: str = "default", tier: str | None = None) -> dict[str, str]:
    services = client.app[SERVICES]
    assert services.admin is not None
    if tenant != "default":
        await services.admin.tenant_admin.create(LOCAL_OPERATOR, tenant, tier=tier)
    user = await services.admin.auth.admin.create_user(LOCAL_OPERATOR, f"u{uuid.uuid4().hex[:8]}", "member", tenant)
    created = await services.admin.auth.admin.create_key(LOCAL_OPERATOR, name="t", user_id=user.id,
                                                         scopes=Scopes(frozenset({"inference"})))
    return {"Authorization": f"Bearer {created.token}"}


def report(**extra: Any) -> dict[str, Any]:
    return {"id": f"evt-{uuid.uuid4().hex}", "model": MODEL, "created": time.time(), "prompt_tokens": 31,
            "completion_tokens": 20, "duration_ms": 1500.0, "ttft_ms": 200.0, "request_id": "hyb-1", **extra}


async def ledger(client: TestClient[Any, Any], tenant: str, count: int) -> list[UsageEvent]:
    metering = client.app[SERVICES].metering
    assert metering is not None
    deadline = time.monotonic() + 10
    while True:
        events = [e for e in await metering.store.events(tenant) if e.token_source is TokenSource.CLIENT]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.05)


async def test_the_catalogue_describes_the_served_file(client: TestClient[Any, Any], gguf: bytes) -> None:
    assert (await client.get("/v1/browser/models")).status == 401
    response = await client.get("/v1/browser/models", headers=await key_of(client))
    assert response.status == 200
    body = await response.json()
    [model] = body["data"]
    data = gguf
    assert (model["id"], model["url"], model["size_bytes"]) == (MODEL, f"/browser/models/{MODEL}.gguf", len(data))
    assert model["sha256"] == hashlib.sha256(data).hexdigest()
    assert model["server_model"] == SERVER_MODEL and model["min_memory_gb"] > 0 and model["expected_tokens_per_s"] > 0
    assert body["policy"] == {"tier": "enterprise", "server_fallback": True}
    basic = await client.get("/v1/browser/models", headers=await key_of(client, "basicco", "basic"))
    assert (await basic.json())["policy"] == {"tier": "basic", "server_fallback": False}


async def test_the_model_file_is_served_by_ranges_with_caching_and_isolation_headers(
        client: TestClient[Any, Any], gguf: bytes) -> None:
    url = f"/browser/models/{MODEL}.gguf"
    head = await client.head(url)
    size = len(gguf)
    assert head.status == 200 and int(head.headers["Content-Length"]) == size
    assert head.headers["Accept-Ranges"] == "bytes" and "max-age=86400" in head.headers["Cache-Control"]
    assert head.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert head.headers["Access-Control-Allow-Origin"] == "*"
    tail = gguf[-1000:]
    ranged = await client.get(url, headers={"Range": f"bytes={size - 1000}-"})
    assert ranged.status == 206 and await ranged.read() == tail
    assert ranged.headers["Content-Range"] == f"bytes {size - 1000}-{size - 1}/{size}"
    first = await client.get(url, headers={"Range": "bytes=0-3"})
    assert (first.status, await first.read()) == (206, b"GGUF")
    cached = await client.get(url, headers={"If-None-Match": head.headers["ETag"]})
    assert cached.status == 304
    missing = await client.get("/browser/models/nope.gguf")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "model_not_found"


async def test_the_playground_is_cross_origin_isolated_and_says_when_the_client_is_not_built(
        client: TestClient[Any, Any]) -> None:
    page = await client.get("/playground")
    assert page.status == 200 and "InferLabBrowser" in await page.text()
    assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    bundle = await client.get("/browser/client/inferlab-browser.js")
    assert bundle.status == 503 and (await bundle.json())["error"]["code"] == "browser_client_missing"
    traversal = await client.get("/browser/client/..%2F..%2Fetc%2Fpasswd")
    assert traversal.status == 401  # no such route: nothing outside the client directory is ever served


async def test_a_local_report_joins_the_ledger_once_marked_local(client: TestClient[Any, Any]) -> None:
    key = await key_of(client)
    sent = report()
    first = await client.post("/v1/browser/usage", json=sent, headers=key)
    assert first.status == 200
    recorded = await first.json()
    assert recorded["status"] == "recorded" and recorded["id"].startswith("local-")
    again = await client.post("/v1/browser/usage", json=sent, headers=key)
    assert (await again.json()) == {**recorded, "status": "duplicate"}
    [event] = await ledger(client, "default", 1)
    assert (event.id, event.replica, event.hardware, event.route) == (
        recorded["id"], "local:wllama", "browser", "/v1/chat/completions")
    assert (event.prompt_tokens, event.completion_tokens, event.status, event.tier) == (
        31, 20, EventStatus.SUCCESS, "enterprise")
    assert event.request_id == "hyb-1" and event.price == 0
    assert abs(event.time.timestamp() - sent["created"]) < 0.001
    other = await client.post("/v1/browser/usage", json=sent, headers=await key_of(client, "otherco"))
    assert (await other.json())["status"] == "recorded"  # the same client id in another tenant: its own event
    assert (await other.json())["id"] != recorded["id"]
    assert len(await ledger(client, "otherco", 1)) == 1
    assert len(await ledger(client, "default", 1)) == 1


REFUSED = [
    ({"model": "gpt-4"}, 400, "unknown_browser_model", "model"),
    ({"completion_tokens": 500, "duration_ms": 100.0, "ttft_ms": 50.0}, 422, "implausible_usage", "duration_ms"),
    ({"prompt_tokens": 2000, "completion_tokens": 100}, 422, "implausible_usage", "completion_tokens"),
    ({"ttft_ms": 5000.0}, 422, "implausible_usage", "ttft_ms"),
    ({"created": time.time() - 3 * 86400}, 422, "implausible_usage", "created"),
    ({"completion_tokens": -1}, 400, None, "completion_tokens"),
    ({"id": "x"}, 400, None, "id"),
    ({"cost": 0}, 400, "unknown_parameter", "cost"),
]


async def test_an_implausible_or_malformed_report_is_refused(client: TestClient[Any, Any]) -> None:
    for change, status, code, param in REFUSED:
        key = await key_of(client)  # a key each: the pacing is not what is tested here
        response = await client.post("/v1/browser/usage", json=report(**change), headers=key)
        error = (await response.json())["error"]
        assert (response.status, error["param"]) == (status, param), change
        assert code is None or error["code"] == code, change
    not_json = await client.post("/v1/browser/usage", data=b"{nope", headers=await key_of(client))
    assert not_json.status == 400
    valid = await client.post("/v1/browser/usage", json=report(), headers=await key_of(client))
    [event] = await ledger(client, "default", 1)  # the valid one, shipped after the refused: those never were
    assert event.id == (await valid.json())["id"]


async def test_reports_are_paced_per_key(client: TestClient[Any, Any]) -> None:
    key = await key_of(client)
    statuses = [(await client.post("/v1/browser/usage", json=report(), headers=key)).status for _ in range(4)]
    assert statuses == [200] * 4
    paced = await client.post("/v1/browser/usage", json=report(), headers=key)
    assert paced.status == 429 and float(paced.headers["Retry-After"]) > 0
    assert (await paced.json())["error"]["code"] == "usage_reports_rate_limited"
    assert (await client.post("/v1/browser/usage", json=report(), headers=await key_of(client))).status == 200


async def test_only_the_tiers_listed_may_fall_back_to_the_server(client: TestClient[Any, Any]) -> None:
    chat = {"model": SERVER_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    fallback = {"x-inferlab-fallback": "device_memory_too_small"}
    enterprise = await key_of(client)
    assert (await client.post("/v1/chat/completions", json=chat, headers={**enterprise, **fallback})).status == 200
    basic = await key_of(client, "basicco2", "basic")
    refused = await client.post("/v1/chat/completions", json=chat, headers={**basic, **fallback})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "server_fallback_not_in_tier"
    assert (await client.post("/v1/chat/completions", json=chat, headers=basic)).status == 200  # not a fallback
    bad = await client.post("/v1/chat/completions", json=chat, headers={**enterprise, "x-inferlab-fallback": "A B"})
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_fallback"


async def test_the_browser_routes_are_declared_with_their_rules(client: TestClient[Any, Any]) -> None:
    from inferlab.api.routes import DECLARED

    rules = {(spec.method, spec.canonical): spec.access.group for spec in client.app[DECLARED]
             if "browser" in spec.tags}
    assert rules == {("GET", "/v1/browser/models"): "inference", ("POST", "/v1/browser/usage"): "inference",
                     ("GET", "/browser/models/{file}"): "public", ("GET", "/playground"): "public",
                     ("GET", "/browser/client/{file}"): "public"}
    documented = await (await client.get("/openapi.json")).json()
    assert {"/v1/browser/models", "/v1/browser/usage", "/playground"} <= set(documented["paths"])
