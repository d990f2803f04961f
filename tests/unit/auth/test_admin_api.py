"""The admin API: CRUD, paging, tenant isolation (404, not 403), delegation ceiling, mass assignment."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(client: Client, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await client.request(method, path, json=body, headers=h(key))
    return response.status, (await response.json() if response.status != 204 else None)


@pytest.fixture
async def platform(make_key: Any) -> str:
    return str(await make_key(role="platform-admin", groups=("inference", "admin", "billing"), name="root"))


async def test_user_and_key_lifecycle(client: Client, platform: str) -> None:
    status, user = await call(client, platform, "POST", "/admin/users", {"name": "alice", "role": "member"})
    assert status == 201 and user["tenant_id"] == "default" and user["role"] == "member"
    status, created = await call(client, platform, "POST", "/admin/keys",
                                 {"name": "ci", "user_id": user["id"], "models": ["sim-model"]})
    assert status == 201 and created["key"].startswith(f"il-{created['id']}-")
    assert created["models"] == ["sim-model"] and created["route_groups"] == ["inference"]
    alice = created["key"]
    assert (await client.get("/v1/models", headers=h(alice))).status == 200

    status, shown = await call(client, platform, "GET", f"/admin/keys/{created['id']}")
    assert status == 200 and "key" not in shown and "key_hash" not in shown
    status, rotated = await call(client, platform, "POST", f"/admin/keys/{created['id']}/rotate")
    assert status == 201 and rotated["id"] != created["id"] and rotated["models"] == ["sim-model"]
    assert (await client.get("/v1/models", headers=h(alice))).status == 401  # rotated out, at once here
    assert (await client.get("/v1/models", headers=h(rotated["key"]))).status == 200
    status, revoked = await call(client, platform, "POST", f"/admin/keys/{rotated['id']}/revoke")
    assert status == 200 and revoked["revoked"] is True
    assert (await client.get("/v1/models", headers=h(rotated["key"]))).status == 401
    assert (await call(client, platform, "POST", f"/admin/keys/{rotated['id']}/rotate"))[0] == 400

    status, patched = await call(client, platform, "PATCH", f"/admin/users/{user['id']}", {"role": "tenant-admin"})
    assert status == 200 and patched["role"] == "tenant-admin"
    assert (await call(client, platform, "DELETE", f"/admin/users/{user['id']}"))[0] == 204
    assert (await call(client, platform, "GET", f"/admin/users/{user['id']}"))[0] == 404


async def test_a_key_rotated_ten_times_at_once_is_rotated_once(client: Client, platform: str) -> None:
    """One rotation wins; the others find the key revoked, as they would one after another (not 404)."""
    _, user = await call(client, platform, "POST", "/admin/users", {"name": "bob"})
    _, created = await call(client, platform, "POST", "/admin/keys", {"name": "ci", "user_id": user["id"]})
    answers = await asyncio.gather(*(call(client, platform, "POST", f"/admin/keys/{created['id']}/rotate")
                                     for _ in range(10)))
    assert sorted(status for status, _ in answers) == [201] + [400] * 9, answers
    assert {body["error"]["code"] for status, body in answers if status == 400} == {"key_revoked"}
    _, listed = await call(client, platform, "GET", f"/admin/keys?user_id={user['id']}")
    assert sorted(key["revoked"] for key in listed["data"]) == [False, True]  # the old key and one new one


async def test_lists_page_by_id(client: Client, platform: str) -> None:
    for i in range(5):
        assert (await call(client, platform, "POST", "/admin/users", {"name": f"u{i}"}))[0] == 201
    seen: list[str] = []
    after = None
    while True:
        path = "/admin/users?limit=2" + (f"&after={after}" if after else "")
        status, page = await call(client, platform, "GET", path)
        assert status == 200 and len(page["data"]) <= 2
        seen += [u["id"] for u in page["data"]]
        if not page["has_more"]:
            break
        after = page["next_after"]
    assert len(seen) == 6 and seen == sorted(seen)  # root + 5
    assert (await call(client, platform, "GET", "/admin/users?limit=0"))[0] == 400
    assert (await call(client, platform, "GET", "/admin/users?limit=201"))[0] == 400


async def test_tenant_admins_see_only_their_tenant(client: Client, make_key: Any, platform: str) -> None:
    acme = await make_key(role="tenant-admin", groups=("inference", "admin"), tenant="acme")
    _, other = await call(client, platform, "POST", "/admin/users", {"name": "bob"})
    _, other_key = await call(client, platform, "POST", "/admin/keys", {"name": "k", "user_id": other["id"]})
    for method, path in [("GET", f"/admin/users/{other['id']}"), ("PATCH", f"/admin/users/{other['id']}"),
                         ("DELETE", f"/admin/users/{other['id']}"), ("GET", f"/admin/keys/{other_key['id']}"),
                         ("DELETE", f"/admin/keys/{other_key['id']}"), ("POST", f"/admin/keys/{other_key['id']}/rotate"),
                         ("POST", f"/admin/keys/{other_key['id']}/revoke")]:
        status, body = await call(client, acme, method, path, {} if method == "PATCH" else None)
        assert status == 404, (method, path, body)
    _, users = await call(client, acme, "GET", "/admin/users")
    assert {u["tenant_id"] for u in users["data"]} == {"acme"}
    _, listed = await call(client, acme, "GET", "/admin/users?tenant_id=default")
    assert listed["data"] == []
    _, keys_page = await call(client, acme, "GET", "/admin/keys")
    assert {k["tenant_id"] for k in keys_page["data"]} == {"acme"}
    assert (await call(client, acme, "POST", "/admin/keys", {"name": "x", "user_id": other["id"]}))[0] == 404


async def test_members_manage_only_their_own_keys(client: Client, make_key: Any, platform: str) -> None:
    member = await make_key(groups=("inference", "admin"))
    status, mine = await call(client, member, "POST", "/admin/keys", {"name": "mine"})
    assert status == 201
    _, listed = await call(client, member, "GET", "/admin/keys")
    assert {k["user_id"] for k in listed["data"]} == {mine["user_id"]}
    _, other = await call(client, platform, "POST", "/admin/users", {"name": "carol"})
    _, other_key = await call(client, platform, "POST", "/admin/keys", {"name": "k", "user_id": other["id"]})
    assert (await call(client, member, "GET", f"/admin/keys/{other_key['id']}"))[0] == 404
    assert (await call(client, member, "GET", "/admin/users"))[0] == 403


ESCALATIONS: list[tuple[str, str, str, Any]] = [
    # (actor, method, path, body) — every one must be refused
    ("member", "POST", "/admin/users", {"name": "x", "role": "member"}),
    ("member", "POST", "/admin/keys", {"name": "x", "route_groups": ["inference", "admin", "billing"]}),
    ("member", "POST", "/admin/keys", {"name": "x", "user_id": "{root}"}),
    ("member", "PATCH", "/admin/users/{self}", {"role": "platform-admin"}),
    ("member", "POST", "/admin/tenants", {"id": "evil"}),
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "role": "platform-admin"}),
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "tenant_id": "other"}),
    ("tenant-admin", "PATCH", "/admin/users/{self}", {"role": "platform-admin"}),
    ("tenant-admin", "PATCH", "/admin/users/{self}", {"disabled": False}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "route_groups": ["billing"]}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "user_id": "{root}"}),
    ("tenant-admin", "PATCH", "/admin/users/{root}", {"disabled": True}),
    ("tenant-admin", "DELETE", "/admin/users/{root}", None),
    ("tenant-admin", "POST", "/admin/tenants", {"id": "evil"}),
    ("tenant-admin", "GET", "/admin/backends", None),
    ("tenant-admin", "GET", "/admin/engines", None),
    ("scoped", "POST", "/admin/keys", {"name": "x"}),  # default all-models would exceed a model-scoped key
    ("scoped", "POST", "/admin/keys", {"name": "x", "models": ["sim-model", "other-model"]}),
    ("expiring", "POST", "/admin/keys", {"name": "x"}),  # no expiry outlives the creator's key
    ("expiring", "POST", "/admin/keys", {"name": "x", "expires_in_s": 10 * 86400}),
    # mass assignment: fields nobody may set
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "id": "u_chosen"}),
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "disabled": False, "limits": {"rpm": 1}}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "key_hash": "0" * 64}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "tenant_id": "other"}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "role": "platform-admin"}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "revoked": False, "id": "aaaaaaaaaaaa"}),
    ("tenant-admin", "POST", "/admin/keys", {"name": "x", "route_groups": ["root"]}),
    ("tenant-admin", "PATCH", "/admin/users/{root}", {"tenant_id": "acme"}),
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "role": "admin"}),
    ("tenant-admin", "POST", "/admin/users", {"name": "x", "role": ["platform-admin"]}),
]


@pytest.mark.parametrize(("actor", "method", "path", "body"), ESCALATIONS)
async def test_every_escalation_is_refused(client: Client, make_key: Any, stack: Any, platform: str,
                                           actor: str, method: str, path: str, body: Any) -> None:
    from datetime import datetime, timedelta

    if actor == "scoped":
        key = await make_key(role="tenant-admin", groups=("inference", "admin"), models=("sim-model",))
    elif actor == "expiring":
        key = await make_key(role="tenant-admin", groups=("inference", "admin"),
                             expires_at=datetime.now(UTC) + timedelta(days=1))
    else:
        key = await make_key(role=actor, groups=("inference", "admin"))
    me = (await stack.store.identify(key.split("-")[1])).key.user_id
    root = (await stack.store.identify(platform.split("-")[1])).key.user_id
    path = path.replace("{self}", me).replace("{root}", root)
    if isinstance(body, dict) and body.get("user_id") == "{root}":
        body = {**body, "user_id": root}
    before = await stack.store.list_users(tenant_id=None, limit=200, after=None)
    before_keys = await stack.store.list_keys(tenant_id=None, user_id=None, limit=200, after=None)
    status, payload = await call(client, key, method, path, body)
    assert status in (400, 403, 404), (status, payload)
    assert payload["error"]["type"] in ("invalid_request_error", "permission_error", "not_found_error")
    assert await stack.store.list_users(tenant_id=None, limit=200, after=None) == before
    assert await stack.store.list_keys(tenant_id=None, user_id=None, limit=200, after=None) == before_keys


async def test_grants_at_the_ceiling_are_allowed(client: Client, make_key: Any) -> None:
    admin = await make_key(role="tenant-admin", groups=("inference", "admin"))
    status, user = await call(client, admin, "POST", "/admin/users", {"name": "peer", "role": "tenant-admin"})
    assert status == 201
    status, key = await call(client, admin, "POST", "/admin/keys",
                             {"name": "x", "user_id": user["id"], "route_groups": ["inference", "admin"]})
    assert status == 201 and key["route_groups"] == ["admin", "inference"]


async def test_openapi_document(client: Client, make_key: Any) -> None:
    member = await make_key(groups=("admin",))
    status, doc = await call(client, member, "GET", "/admin/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/admin/users", "/admin/keys/{key_id}/rotate", "/admin/limits/{subject}/{subject_id}", "/admin/backends",
            "/admin/audit"} <= set(doc["paths"])
    assert doc["components"]["schemas"]["KeyIn"]["additionalProperties"] is False
    assert doc["paths"]["/admin/users"]["post"]["x-required-role"] == "tenant-admin"
    assert doc["paths"]["/admin/limits/{subject}/{subject_id}"]["put"]["requestBody"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/LimitsIn"}
