"""The audit log: one row and one log line per admin action (who, what, before/after, when, request
id), never a secret, read through ``GET /admin/audit`` with tenant isolation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from inferlab.auth import LOCAL_OPERATOR
from inferlab.auth.audit import AuditEvent, AuditLog
from inferlab.auth.stack import AuthStack
from inferlab.logs import JsonFormatter

Client = TestClient[Any, Any]


def key_id(token: str) -> str:
    return token.split("-")[1]


async def call(client: Client, key: str, method: str, path: str, body: Any = None,
               request_id: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}", **({"x-request-id": request_id} if request_id else {})}
    response = await client.request(method, path, json=body, headers=headers)
    return response.status, (await response.json() if response.status != 204 else None)


async def audit(client: Client, key: str, query: str = "") -> list[dict[str, Any]]:
    status, page = await call(client, key, "GET", "/admin/audit?limit=200" + query)
    assert status == 200, page
    assert page["object"] == "list" and not page["has_more"]
    return list(page["data"])


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [record.audit for record in caplog.records if record.name == "inferlab.audit"]  # type: ignore[attr-defined]


@pytest.fixture
async def root(make_key: Any) -> str:
    return str(await make_key(role="platform-admin", groups=("inference", "admin"), name="root"))


async def test_each_admin_action_writes_one_row_with_before_and_after(
    client: Client, root: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="inferlab.audit")
    before = len(await audit(client, root))
    assert (await call(client, root, "POST", "/admin/tenants", {"id": "acme"}, request_id="req-0"))[0] == 201
    assert (await call(client, root, "POST", "/admin/users", {"name": "alice", "tenant_id": "acme"}))[0] == 201
    rows = await audit(client, root)
    assert len(rows) == before + 2
    user_row, tenant_row = rows[0], rows[1]  # newest first
    assert tenant_row["action"] == "tenant.create" and tenant_row["before"] is None
    assert tenant_row["after"] == {"id": "acme", "name": "acme", "tier": None, "status": "active", "overrides": None}
    assert tenant_row["request_id"] == "req-0"
    assert user_row["action"] == "user.create" and user_row["target"]["tenant_id"] == "acme"
    assert user_row["actor"] == {"key_id": key_id(root), "user_id": user_row["actor"]["user_id"],
                                 "tenant_id": "default", "role": "platform-admin", "source": "api_key"}
    user_id = user_row["target"]["id"]

    async def one_more(method: str, path: str, body: Any, action: str, request_id: str) -> dict[str, Any]:
        seen = len(await audit(client, root))
        lines = len(audit_lines(caplog))
        status, answer = await call(client, root, method, path, body, request_id=request_id)
        assert status in (200, 201, 204), answer
        rows = await audit(client, root)
        assert len(rows) == seen + 1, "exactly one audit row per action"
        new_lines = audit_lines(caplog)[lines:]
        assert [line["id"] for line in new_lines] == [rows[0]["id"]], "exactly one audit log line per action"
        assert new_lines[0] == rows[0]  # the log line carries the same event as the row
        assert rows[0]["action"] == action and rows[0]["request_id"] == request_id
        assert rows[0]["created_at"].endswith("Z")
        return rows[0]

    row = await one_more("PATCH", f"/admin/users/{user_id}", {"role": "tenant-admin"}, "user.update", "r-patch")
    assert row["before"]["role"] == "member" and row["after"]["role"] == "tenant-admin"
    row = await one_more("POST", "/admin/keys", {"name": "ci", "user_id": user_id, "models": ["sim-model"]},
                         "key.create", "r-key")
    assert row["before"] is None and row["after"]["models"] == ["sim-model"] and row["after"]["revoked"] is False
    created = row["target"]["id"]
    row = await one_more("POST", f"/admin/keys/{created}/rotate", None, "key.rotate", "r-rotate")
    assert row["target"]["id"] == created and row["before"]["id"] == created and row["after"]["id"] != created
    rotated = row["after"]["id"]
    row = await one_more("POST", f"/admin/keys/{rotated}/revoke", None, "key.revoke", "r-revoke")
    assert row["before"]["revoked"] is False and row["after"]["revoked"] is True
    row = await one_more("PUT", f"/admin/limits/user/{user_id}", {"rpm": 7}, "limits.set", "r-limits")
    assert row["before"] is None and row["after"]["rpm"] == 7 and row["target"] == {
        "type": "user", "id": user_id, "tenant_id": "acme"}
    row = await one_more("PUT", f"/admin/limits/user/{user_id}", {"rpm": 9}, "limits.set", "r-limits-2")
    assert row["before"]["rpm"] == 7 and row["after"]["rpm"] == 9
    row = await one_more("DELETE", f"/admin/users/{user_id}", None, "user.delete", "r-delete")
    assert row["before"]["name"] == "alice" and row["after"] is None

    # refused actions change nothing and record nothing
    seen = len(await audit(client, root))
    assert (await call(client, root, "POST", "/admin/tenants", {"id": "acme"}))[0] == 400
    assert len(await audit(client, root)) == seen
    # filters
    assert {r["action"] for r in await audit(client, root, "&action=key.rotate")} == {"key.rotate"}
    assert {r["target"]["id"] for r in await audit(client, root, f"&target_id={user_id}")} == {user_id}
    assert (await call(client, root, "GET", "/admin/audit?action=key.steal"))[0] == 400


async def test_no_secret_reaches_a_row_or_a_log_line(
    client: Client, root: str, stack: AuthStack, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="inferlab")
    _, created = await call(client, root, "POST", "/admin/keys", {"name": "ci"})
    _, rotated = await call(client, root, "POST", f"/admin/keys/{created['id']}/rotate")
    secrets: list[str] = [root, root.split("-", 2)[2]]
    for answer in (created, rotated):
        stored = await stack.store.get_key(answer["id"])
        assert stored is not None
        secrets += [answer["key"], answer["key"].split("-", 2)[2], stored.key_hash]
    rows = orjson.dumps(await audit(client, root)).decode()
    formatter = JsonFormatter()
    logs = "\n".join(formatter.format(record) for record in caplog.records)
    assert created["id"] in rows and rotated["id"] in rows and created["id"] in logs
    for secret in secrets:
        assert secret not in rows and secret not in logs


async def test_tenant_admins_read_only_their_tenant(client: Client, root: str, make_key: Any) -> None:
    acme_admin = await make_key(role="tenant-admin", groups=("admin",), tenant="acme")
    other_admin = await make_key(role="tenant-admin", groups=("admin",), tenant="other")
    member = await make_key(role="member", groups=("admin",), tenant="acme")
    _, alice = await call(client, root, "POST", "/admin/users", {"name": "alice", "tenant_id": "acme"})
    _, bob = await call(client, root, "POST", "/admin/users", {"name": "bob", "tenant_id": "other"})
    _, carol = await call(client, acme_admin, "POST", "/admin/users", {"name": "carol"})

    seen = await audit(client, acme_admin)
    assert {row["target"]["tenant_id"] for row in seen} == {"acme"}
    targets = {row["target"]["id"] for row in seen}
    assert alice["id"] in targets and carol["id"] in targets and bob["id"] not in targets
    by_root = next(row for row in seen if row["target"]["id"] == alice["id"])
    assert by_root["actor"] == {"key_id": None, "user_id": None, "tenant_id": None, "role": "platform-admin",
                                "source": "api_key"}  # no id of another tenant's user crosses over
    by_self = next(row for row in seen if row["target"]["id"] == carol["id"])
    assert by_self["actor"]["key_id"] == key_id(acme_admin)
    assert await audit(client, acme_admin, "&tenant_id=other") == []
    assert bob["id"] in {row["target"]["id"] for row in await audit(client, other_admin)}
    assert {row["target"]["tenant_id"] for row in await audit(client, root, "&tenant_id=other")} == {"other"}
    assert {row["target"]["tenant_id"] for row in await audit(client, root)} >= {"acme", "other", "default"}

    status, body = await call(client, member, "GET", "/admin/audit")
    assert status == 403 and body["error"]["type"] == "permission_error"


async def test_pages_go_from_newest_to_oldest(client: Client, root: str) -> None:
    for i in range(5):
        assert (await call(client, root, "POST", "/admin/users", {"name": f"u{i}"}))[0] == 201
    ids: list[str] = []
    after = None
    while True:
        status, page = await call(client, root, "GET", "/admin/audit?limit=2" + (f"&after={after}" if after else ""))
        assert status == 200 and len(page["data"]) <= 2
        ids += [row["id"] for row in page["data"]]
        if not page["has_more"]:
            break
        after = page["next_after"]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) >= 5


class BrokenStore:
    async def add(self, event: AuditEvent) -> None:
        raise OSError("database went away")

    async def list(self, **_: Any) -> Sequence[AuditEvent]:
        return []


async def test_a_failing_store_keeps_the_log_line_and_does_not_undo_the_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="inferlab.audit")
    event = await AuditLog(BrokenStore()).record(LOCAL_OPERATOR, "tenant.create", ("tenant", "t", "t"),
                                                 before=None, after={"id": "t"})
    levels = [(record.levelname, getattr(record, "audit", {}).get("id")) for record in caplog.records]
    assert levels[0] == ("INFO", event.id) and levels[1][0] == "ERROR"
