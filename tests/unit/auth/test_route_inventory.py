"""Every registered route has an access decision; without credentials all but the allowlist say 401."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from inferlab.auth.policy import ROUTES, RoutePolicy

ALLOWLIST = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}  # documented in auth/policy.py
_PARAM = re.compile(r"\{[^}]+\}")


def registered_routes(app: web.Application) -> list[tuple[str, str]]:
    routes = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        routes.append((route.method, route.resource.canonical))
    return sorted(set(routes))


def concrete(path: str) -> str:
    return _PARAM.sub("aaaaaaaaaaaa", path)


async def test_every_route_has_a_decision_and_only_the_allowlist_is_open(client: TestClient[Any, Any]) -> None:
    routes = registered_routes(client.app)  # the client's app has auth and every optional route family on
    assert {("GET", "/admin/users"), ("POST", "/v1/chat/completions"), ("POST", "/v1/planning/vram")} <= set(routes)
    undecided = [route for route in routes if RoutePolicy().rule(*route) is None]
    assert undecided == [], f"routes without an access decision in inferlab.auth.policy.ROUTES: {undecided}"
    for method, path in routes:
        response = await client.request(method, concrete(path), data=b"{}")
        expected = 200 if (method, path) in ALLOWLIST else 401
        if (method, path) == ("GET", "/ready"):
            assert response.status in (200, 503)
        else:
            assert response.status == expected, (method, path, await response.text())
        if expected == 401:
            body = await response.json()
            assert body["error"]["type"] == "authentication_error"


async def test_unknown_paths_and_methods_also_say_401(client: TestClient[Any, Any]) -> None:
    for method, path in [("GET", "/nope"), ("DELETE", "/v1/models"), ("GET", "/admin"), ("PUT", "/health/x")]:
        assert (await client.request(method, path)).status == 401


def test_policy_table_has_no_stale_entries() -> None:
    """Every policy row names a route some part of InferLab registers (catches typos in the table)."""
    known_prefixes = ("/v1/", "/admin/", "/health", "/ready", "/metrics")
    assert all(path.startswith(known_prefixes) for _, path in ROUTES)
