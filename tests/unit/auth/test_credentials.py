"""One authentication suite, run once per credential header: the results must be identical."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from inferlab.app import SERVICES
from inferlab.auth import LOCAL_OPERATOR, keys

CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}

HEADERS: dict[str, Callable[[str], dict[str, str]]] = {
    "bearer": lambda key: {"Authorization": f"Bearer {key}"},
    "x-api-key": lambda key: {"x-api-key": key},
}


async def outcomes(client: TestClient[Any, Any], make_key: Any, header: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """Run every case with one header style; return {case: (status, error type, error code)}."""
    member = await make_key()
    scoped = await make_key(models=("other-model",))
    admin = await make_key(role="tenant-admin", groups=("inference", "admin"))
    expired = await make_key(expires_at=datetime.now(UTC) + timedelta(seconds=1))
    revoked = await make_key()
    stack = client.app[SERVICES].auth
    await stack.admin.revoke_key(LOCAL_OPERATOR, revoked.split("-")[1])
    forged = member[:-1] + ("A" if member[-1] != "A" else "B")
    cases: dict[str, tuple[str, str, str, dict[str, Any] | None]] = {
        "valid chat": (member, "POST", "/v1/chat/completions", CHAT),
        "valid models": (member, "GET", "/v1/models", None),
        "forged secret": (forged, "POST", "/v1/chat/completions", CHAT),
        "unknown key": (keys.generate().token, "GET", "/v1/models", None),
        "not a key": ("sk-1234", "GET", "/v1/models", None),
        "revoked": (revoked, "GET", "/v1/models", None),
        "member on admin": (member, "GET", "/admin/users", None),
        "admin on admin": (admin, "GET", "/admin/users", None),
        "model out of scope": (scoped, "POST", "/v1/chat/completions", CHAT),
        "model in scope": (scoped, "POST", "/v1/chat/completions", {**CHAT, "model": "other-model"}),
        "model path out of scope": (scoped, "GET", "/v1/models/sim-model", None),
        "scoped key without model": (scoped, "POST", "/v1/chat/completions", {"messages": []}),
    }
    await asyncio.sleep(1.05)  # let `expired` expire
    cases["expired"] = (expired, "GET", "/v1/models", None)
    results: dict[str, Any] = {}
    for name, (key, method, path, body) in cases.items():
        response = await client.request(method, path, json=body, headers=header(key))
        payload = await response.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        results[name] = (response.status, error and error["type"], error and error["code"])
    return results


EXPECTED = {
    "valid chat": 200, "valid models": 200, "forged secret": 401, "unknown key": 401, "not a key": 401,
    "revoked": 401, "member on admin": 403, "admin on admin": 200, "model out of scope": 403,
    "model in scope": 200, "model path out of scope": 403, "scoped key without model": 400, "expired": 401,
}


@pytest.mark.parametrize("style", sorted(HEADERS))
async def test_auth_suite(client: TestClient[Any, Any], make_key: Any, style: str) -> None:
    results = await outcomes(client, make_key, HEADERS[style])
    assert {name: status for name, (status, _, _) in results.items()} == EXPECTED


async def test_both_headers_give_identical_results(client: TestClient[Any, Any], make_key: Any) -> None:
    assert await outcomes(client, make_key, HEADERS["bearer"]) == await outcomes(client, make_key, HEADERS["x-api-key"])


async def test_both_headers_at_once_must_agree(client: TestClient[Any, Any], make_key: Any) -> None:
    one, two = await make_key(), await make_key()
    same = await client.get("/v1/models", headers={"Authorization": f"Bearer {one}", "x-api-key": one})
    assert same.status == 200
    differ = await client.get("/v1/models", headers={"Authorization": f"Bearer {one}", "x-api-key": two})
    assert differ.status == 401


@pytest.mark.parametrize("value", ["Basic abc", "Bearer", "Bearer ", "Token x", "bearer"])
async def test_malformed_authorization_is_401(client: TestClient[Any, Any], value: str) -> None:
    response = await client.get("/v1/models", headers={"Authorization": value})
    assert response.status == 401
    assert (await response.json())["error"]["type"] == "authentication_error"


async def test_disabled_user_is_refused_within_the_ttl(client: TestClient[Any, Any], make_key: Any, stack: Any) -> None:
    key = await make_key()
    assert (await client.get("/v1/models", headers={"x-api-key": key})).status == 200
    found = await stack.store.identify(key.split("-")[1])
    await stack.admin.update_user(LOCAL_OPERATOR, found.key.user_id, disabled=True)  # forgets the cached key
    assert (await client.get("/v1/models", headers={"x-api-key": key})).status == 401
