"""Every registered route has a declared access rule; without credentials all but the public ones say 401.

The rules are declared by each route family beside its handlers (``inferlab.api.routes.RouteSpec``)
and assembled into one ``RoutePolicy`` by the composition root; a route registered any other way has
no rule, so these tests fail and the middleware refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.api.routes import DECLARED, access_rules
from inferlab.app import create_app
from inferlab.auth.policy import (
    ADMIN_SELF,
    MODEL_IN_BODY,
    MODEL_IN_PATH,
    PLATFORM_ADMIN,
    PUBLIC,
    TENANT_ADMIN,
    RoutePolicy,
    RouteRule,
)
from inferlab.config import Settings

PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
                 ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/admin/openapi.json"),  # these 3: server.docs
                 ("POST", "/webhooks/stripe")}  # authenticated by its signature instead: 400 without one
PUBLIC_ROUTES |= {("GET", "/ui"), ("GET", "/ui/login"), ("POST", "/ui/login"), ("POST", "/ui/logout"),
                  ("GET", "/ui/static/{name}")}  # the dashboards' sign-in (its own CSRF check) and static files
_PARAM = re.compile(r"\{[^}]+\}")


def registered_routes(app: web.Application) -> list[tuple[str, str]]:
    routes = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        routes.append((route.method, route.resource.canonical))
    return sorted(set(routes))


def app_policy(app: web.Application) -> RoutePolicy:
    """The policy the composition root gave the auth middleware: the union of the declared rules."""
    return RoutePolicy(access_rules(app[DECLARED]))


def undecided_routes(app: web.Application) -> list[tuple[str, str]]:
    policy = app_policy(app)
    return [route for route in registered_routes(app) if policy.rule(*route) is None]


def concrete(path: str) -> str:
    return _PARAM.sub("aaaaaaaaaaaa", path)


async def test_every_route_has_a_decision_and_only_the_public_ones_are_open(client: TestClient[Any, Any]) -> None:
    routes = registered_routes(client.app)  # the client's app has auth and every optional route family on
    assert {("GET", "/admin/users"), ("POST", "/v1/chat/completions"), ("POST", "/v1/planning/vram"),
            ("GET", "/admin/limits/{subject}/{subject_id}"), ("GET", "/admin/backends")} <= set(routes)
    assert undecided_routes(client.app) == [], "routes registered without a RouteSpec (inferlab.api.routes)"
    for method, path in routes:
        response = await client.request(method, concrete(path), data=b"{}")
        expected = 200 if (method, path) in PUBLIC_ROUTES else 401
        if (method, path) == ("POST", "/webhooks/stripe"):
            assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_signature"
        elif (method, path) == ("GET", "/ready"):
            assert response.status in (200, 503)
        elif path.startswith("/ui"):
            await check_dashboard_without_session(method, path, response)
            continue
        else:
            assert response.status == expected, (method, path, await response.text())
        if expected == 401:
            body = await response.json()
            assert body["error"]["type"] == "authentication_error"


async def test_the_declared_routes_are_exactly_the_registered_ones(client: TestClient[Any, Any]) -> None:
    declared = {(spec.method, spec.canonical) for spec in client.app[DECLARED]}
    assert declared == set(registered_routes(client.app))
    public = {route for route, rule in app_policy(client.app).routes.items() if rule.group == "public"}
    assert public == PUBLIC_ROUTES


async def test_no_route_lacks_a_policy_for_a_caller_with_every_right(client: TestClient[Any, Any],
                                                                     make_key: Any) -> None:
    root = await make_key(role="platform-admin", groups=("inference", "admin", "billing"))
    for method, path in registered_routes(client.app):
        response = await client.request(method, concrete(path), data=b"{}", headers={"x-api-key": root})
        if response.status == 403 and (method, path) != ("POST", "/ui/login"):  # that one: the form's CSRF check
            assert (await response.json())["error"]["code"] != "no_policy", (method, path)


def test_the_rules_that_matter_are_what_they_were(client: TestClient[Any, Any]) -> None:
    expected: dict[tuple[str, str], RouteRule] = {
        ("GET", "/health"): PUBLIC,
        ("POST", "/v1/chat/completions"): MODEL_IN_BODY,
        ("POST", "/v1/completions"): MODEL_IN_BODY,
        ("POST", "/v1/embeddings"): MODEL_IN_BODY,
        ("GET", "/v1/models/{model_id}"): MODEL_IN_PATH,
        ("GET", "/admin/keys"): ADMIN_SELF,
        ("GET", "/admin/users"): TENANT_ADMIN,
        ("PUT", "/admin/limits/{subject}/{subject_id}"): TENANT_ADMIN,
        ("GET", "/admin/limits/{subject}/{subject_id}"): ADMIN_SELF,
        ("GET", "/admin/audit"): TENANT_ADMIN,
        ("POST", "/admin/tenants"): PLATFORM_ADMIN,
        ("GET", "/admin/backends"): PLATFORM_ADMIN,
        ("GET", "/admin/engines"): PLATFORM_ADMIN,
        ("GET", "/admin/anomalies"): PLATFORM_ADMIN,
    }
    policy = app_policy(client.app)
    assert {route: policy.rule(*route) for route in expected} == expected


async def test_unknown_paths_and_methods_also_say_401(client: TestClient[Any, Any]) -> None:
    for method, path in [("GET", "/nope"), ("DELETE", "/v1/models"), ("GET", "/admin"), ("PUT", "/health/x")]:
        assert (await client.request(method, path)).status == 401


async def test_a_route_registered_without_a_declaration_is_refused(settings_with: Callable[..., Settings],
                                                                   keys_for: Any) -> None:
    app = await create_app(settings_with())

    async def sneaky(request: web.Request) -> web.Response:
        return web.json_response({"leaked": True})

    app.router.add_get("/v1/sneaky", sneaky)  # bypasses RouteSpec: no rule
    assert undecided_routes(app) == [("GET", "/v1/sneaky")]
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/v1/sneaky")).status == 401
        root = await keys_for(app)(role="platform-admin", groups=("inference", "admin"))
        response = await client.get("/v1/sneaky", headers={"x-api-key": root})
        assert response.status == 403 and (await response.json())["error"]["code"] == "no_policy"


async def test_protect_metrics_puts_metrics_behind_a_platform_admin(settings_with: Callable[..., Settings],
                                                                    keys_for: Any) -> None:
    app = await create_app(settings_with(protect_metrics=True))
    assert app_policy(app).rule("GET", "/metrics") == PLATFORM_ADMIN
    async with TestClient(TestServer(app)) as client:
        make = keys_for(app)
        tenant_admin = await make(role="tenant-admin", groups=("admin",))
        root = await make(role="platform-admin", groups=("admin",))
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"x-api-key": tenant_admin})).status == 403
        assert (await client.get("/metrics", headers={"x-api-key": root})).status == 200


async def check_dashboard_without_session(method: str, path: str, response: Any) -> None:
    """A dashboard page without a session: a page load goes to the sign-in form, anything else is a 401
    (or, for the public sign-in routes, a refusal of the form that carries no CSRF token)."""
    if (method, path) == ("GET", "/ui/static/{name}"):
        assert response.status == 404  # only the vendored files are served
    elif (method, path) == ("POST", "/ui/login"):
        assert response.status == 403 and "The form expired" in await response.text()
    elif method == "GET" or (method, path) == ("POST", "/ui/logout"):
        assert response.status == 200 and response.url.path == "/ui/login", (method, path)
    else:
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "session_expired"
