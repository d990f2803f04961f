"""A tenant's life through the admin API: suspended (403 on every route, its running stream ends
with one error event), resumed, deleted (users disabled, keys revoked, id never reused, history
kept); stored tiers added, changed and deleted, reaching a second gateway on the same store
within the cache's TTL."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse

from inferlab.api.routes import DECLARED
from inferlab.auth.policy import ROLE_RANK
from inferlab.testing import SimulatorScript

from .conftest import TTL_S, Gateway, MakeGateway, h

STREAM = {"model": "sim-model", "messages": [{"role": "user", "content": "tell me a story"}], "stream": True,
          "max_tokens": 400}
CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
SLOW = SimulatorScript(completion_tokens=400, token_delay_s=0.02)  # 8 s if nothing ends it


PARAMETERS = {"model_id": "sim-model", "subject": "key", "tier": "free"}  # else an id that exists nowhere


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda found: PARAMETERS.get(found[1], "aaaaaaaaaaaa"), path)


async def sse_events(response: ClientResponse, first: bytes) -> list[bytes]:
    rest = await asyncio.wait_for(response.content.read(), timeout=5)
    return [event.strip() for event in (first + rest).split(b"\n\n") if event.strip()]


async def start_stream(gateway: Gateway, key: str) -> tuple[ClientResponse, bytes]:
    response = await gateway.client.post("/v1/chat/completions", json=STREAM, headers=h(key))
    assert response.status == 200, await response.text()
    first = await response.content.readuntil(b"\n\n")
    assert first.startswith(b"data: {") and b"chat.completion.chunk" in first
    return response, first


def ended_by_one_error(events: list[bytes], code: str) -> None:
    errors = [event for event in events if event.startswith(b'data: {"error"')]
    assert len(errors) == 1 and events[-1] == errors[0], events[-3:]
    assert f'"code":"{code}"'.encode() in errors[0]
    assert b"data: [DONE]" not in events
    assert 1 <= len(events) - 1 < 200  # cut short: some chunks, far from the 400 asked


async def test_a_suspended_tenant_is_refused_everywhere_its_stream_ends_and_resume_restores(gateway: Gateway) -> None:
    await gateway.tenant("acme", "pro")
    admin = await gateway.key("acme", role="tenant-admin", groups=("inference", "admin", "billing"))
    member = await gateway.key("acme")
    gateway.sim.script = SLOW
    response, first = await start_stream(gateway, member)
    assert response.headers["x-inferlab-tier"] == "pro"

    status, body, _ = await gateway.call(gateway.root, "POST", "/admin/tenants/acme/suspend")
    assert status == 200 and body["status"] == "suspended"
    ended_by_one_error(await sse_events(response, first), "tenant_suspended")

    checked = 0
    for spec in gateway.client.app[DECLARED]:
        if spec.access.group == "public" or spec.access.session:  # dashboards: a session cookie, never a header
            continue
        status, payload, _ = await gateway.call(admin, spec.method, concrete(spec.canonical),
                                                {} if spec.method in ("POST", "PUT", "PATCH") else None)
        assert status == 403, (spec.method, spec.canonical, payload)
        expected = "insufficient_role" if ROLE_RANK[spec.access.min_role] > ROLE_RANK["tenant-admin"] \
            else "tenant_suspended"
        assert payload["error"]["code"] == expected, (spec.method, spec.canonical)
        checked += 1
    assert checked >= 25
    status, body, _ = await gateway.call(member, "POST", "/v1/chat/completions", CHAT)
    assert (status, body["error"]["message"]) == (403, "Tenant 'acme' is suspended")

    status, body, _ = await gateway.call(gateway.root, "POST", "/admin/tenants/acme/resume")
    assert status == 200 and body["status"] == "active"
    assert (await gateway.call(member, "POST", "/v1/chat/completions", CHAT))[0] == 200
    assert (await gateway.call(admin, "GET", "/admin/keys"))[0] == 200
    _, audit, _ = await gateway.call(gateway.root, "GET", "/admin/audit?target_id=acme")
    assert [row["action"] for row in audit["data"]] == ["tenant.resume", "tenant.suspend", "tenant.create"]


async def test_a_deleted_tenant_loses_its_users_and_keys_keeps_its_history_and_its_id(gateway: Gateway) -> None:
    await gateway.tenant("acme", "pro")
    admin = await gateway.key("acme", role="tenant-admin", groups=("inference", "admin"))
    member = await gateway.key("acme")
    assert (await gateway.call(gateway.root, "PUT", "/admin/limits/tenant/acme", {"rpm": 50}))[0] == 200
    assert (await gateway.call(admin, "POST", "/admin/users", {"name": "late"}))[0] == 201

    status, body, _ = await gateway.call(gateway.root, "DELETE", "/admin/tenants/acme")
    assert status == 200 and body["status"] == "deleted"
    for key in (admin, member):
        status, body, _ = await gateway.call(key, "GET", "/v1/models")
        assert status == 401, body  # revoked, at once on this replica
    _, users, _ = await gateway.call(gateway.root, "GET", "/admin/users?tenant_id=acme")
    assert len(users["data"]) == 3 and all(user["disabled"] for user in users["data"])
    _, keys, _ = await gateway.call(gateway.root, "GET", "/admin/keys")
    assert {k["revoked"] for k in keys["data"] if k["tenant_id"] == "acme"} == {True}

    status, body, _ = await gateway.call(gateway.root, "POST", "/admin/tenants", {"id": "acme"})
    assert status == 400 and body["error"]["code"] == "conflict"  # never reused
    _, audit, _ = await gateway.call(gateway.root, "GET", "/admin/audit?tenant_id=acme")
    actions = [row["action"] for row in audit["data"]]
    assert actions[0] == "tenant.delete" and {"tenant.create", "user.create", "key.create", "limits.set"} <= set(actions)
    _, limits, _ = await gateway.call(gateway.root, "GET", "/admin/limits/tenant/acme")
    assert limits["rpm"] == 50  # kept with the tenant's row
    status, shown, _ = await gateway.call(gateway.root, "GET", "/admin/tenants/acme")
    assert status == 200 and shown["status"] == "deleted"
    for method, path, body in [("DELETE", "/admin/tenants/acme", None), ("POST", "/admin/tenants/acme/suspend", None),
                               ("POST", "/admin/tenants/acme/resume", None),
                               ("PATCH", "/admin/tenants/acme", {"name": "Back"})]:
        assert (await gateway.call(gateway.root, method, path, body))[0] == 404, (method, path)
    await gateway.tenant("ops")
    ops = await gateway.key("ops", role="platform-admin", groups=("admin",))
    for actor, tenant in [(gateway.root, "default"), (ops, "default"), (ops, "ops")]:  # the default one, one's own
        for method, path in [("DELETE", f"/admin/tenants/{tenant}"), ("POST", f"/admin/tenants/{tenant}/suspend")]:
            status, body, _ = await gateway.call(actor, method, path)
            assert status == 400 and body["error"]["code"] == "invalid_target", (tenant, method)


async def test_tenants_admin_api_creates_updates_and_validates(gateway: Gateway) -> None:
    root = gateway.root
    status, body, _ = await gateway.call(root, "POST", "/admin/tenants",
                                         {"id": "acme", "name": "Acme", "tier": "free", "overrides": {"max_tokens": 64}})
    assert status == 201 and (body["tier"], body["effective_tier"], body["overrides"]) == ("free", "free",
                                                                                          {"max_tokens": 64})
    status, body, _ = await gateway.call(root, "PATCH", "/admin/tenants/acme", {"tier": None, "name": "Acme Inc"})
    assert status == 200 and body["tier"] is None and body["effective_tier"] == "enterprise"
    assert body["name"] == "Acme Inc" and body["overrides"] == {"max_tokens": 64}
    for bad, code in [({"id": "Bad Id"}, "invalid_value"), ({"id": "x", "tier": "nope"}, "unknown_tier"),
                      ({"id": "x", "overrides": {"max_tokenz": 1}}, "invalid_value"),
                      ({"id": "x", "status": "active"}, "invalid_value")]:
        status, body, _ = await gateway.call(root, "POST", "/admin/tenants", bad)
        assert (status, body["error"]["code"]) == (400, code), bad
    status, body, _ = await gateway.call(root, "PATCH", "/admin/tenants/acme", {"overrides": {"over_cap": "shrug"}})
    assert status == 400 and body["error"]["param"] == "over_cap"
    _, page, _ = await gateway.call(root, "GET", "/admin/tenants?limit=1")
    assert page["has_more"] and page["data"][0]["id"] == "acme"


async def test_stored_tiers_reach_another_gateway_within_the_ttl(make_gateway: MakeGateway, tmp_path: Path) -> None:
    a = await make_gateway(data_dir=tmp_path)
    b = await make_gateway(data_dir=tmp_path)  # a replica: the same SQLite store
    status, tier, _ = await a.call(a.root, "PUT", "/admin/tiers/gold", {"models": ["sim-model"], "max_tokens": 100})
    assert status == 200 and tier["origin"] == "stored" and tier["max_tokens"] == 100
    assert (await a.call(a.root, "POST", "/admin/tenants", {"id": "goldco", "tier": "gold"}))[0] == 201
    key = await a.key("goldco")
    asks_100: dict[str, Any] = {**CHAT, "max_tokens": 100}
    assert (await b.call(key, "POST", "/v1/chat/completions", asks_100))[0] == 200

    assert (await a.call(a.root, "PUT", "/admin/tiers/gold", {"models": ["sim-model"], "max_tokens": 10}))[0] == 200
    changed_at = time.monotonic()
    assert (await a.call(key, "POST", "/v1/chat/completions", asks_100))[0] == 400  # the changing replica: at once
    while (await b.call(key, "POST", "/v1/chat/completions", asks_100))[0] == 200:
        assert time.monotonic() - changed_at < TTL_S + 0.3, "the second gateway still serves the old tier"
        await asyncio.sleep(0.02)
    status, body, headers = await b.call(key, "POST", "/v1/chat/completions", asks_100)
    assert status == 400 and body["error"]["code"] == "max_tokens_over_tier_cap" and headers["x-inferlab-tier"] == "gold"
    _, shown, _ = await b.call(b.root, "GET", "/admin/tiers/gold")
    assert shown["max_tokens"] == 10 and shown["origin"] == "stored"

    status, body, _ = await b.call(b.root, "DELETE", "/admin/tiers/gold")
    assert status == 400 and body["error"]["code"] == "tier_in_use"
    assert (await b.call(b.root, "PATCH", "/admin/tenants/goldco", {"tier": "pro"}))[0] == 200
    assert (await b.call(b.root, "DELETE", "/admin/tiers/gold"))[0] == 204
    assert (await a.call(a.root, "GET", "/admin/tiers/gold"))[0] == 404
    assert (await a.call(a.root, "DELETE", "/admin/tiers/free"))[0] == 404  # shipped: changed in the config only
    assert (await a.call(a.root, "PUT", "/admin/tiers/free", {"max_tokens": 0}))[0] == 400
    _, listed, _ = await a.call(a.root, "GET", "/admin/tiers")
    assert {t["name"]: t["origin"] for t in listed["data"]} == {
        "basic": "configured", "enterprise": "shipped", "free": "shipped", "metered": "configured", "pro": "shipped",
        "squeeze": "configured"}

    # suspended through one gateway: its stream on the other ends within the TTL (the sweep)
    b.sim.script = SLOW
    response, first = await start_stream(b, key)
    assert (await a.call(a.root, "POST", "/admin/tenants/goldco/suspend"))[0] == 200
    ended_by_one_error(await sse_events(response, first), "tenant_suspended")
