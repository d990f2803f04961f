"""Generated access matrices over the declared admin routes (``app[DECLARED]``).

BOLA: every admin route with an object id in its path × every method, called by a member and a
tenant admin of one tenant on another tenant's objects → 404 (or the role refusal, which does not
depend on the id), exactly as for an id that exists nowhere, and the other tenant's objects are
unchanged afterwards.

BFLA: roles {member, tenant-admin, platform-admin} × every admin route, on objects of the actor's
own reach → only the documented cells succeed. A role below the route's declared ``min_role`` gets
403 ``insufficient_role`` (derived from the route table); every other cell's status is in
``EXPECTED`` (the object rules of ``inferlab.auth.policy``, ``IdentityAdmin``, ``LimitAdmin`` and
``TenantManager``, ``ResourceRoutes``, ``UsageRoutes``). A route declared without an entry here fails the test; the
gateway here has every optional admin route family on (planning, resources).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inferlab.api.routes import DECLARED, RouteSpec
from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import ROLE_RANK, ROLES, Tenant
from inferlab.auth.stack import AuthStack
from inferlab.config import Settings
from inferlab.config.tenants import TierSpec
from inferlab.ratelimit.policy import Overrides
from inferlab.resources.model import Amount
from inferlab.store.limits import SqlLimitStore
from inferlab.testing import EngineSimulator

from .conftest import CANARY_PEPPER

Client = TestClient[Any, Any]
GROUPS = frozenset({"inference", "admin", "billing"})
_PARAMETER = re.compile(r"\{(\w+)\}")

OWNED = {"user_id": "user", "key_id": "key", "tenant_id": "tenant", "subject_id": "subject"}  # belong to a tenant
SHARED = {
    "tier": "tiers are shared by every tenant: read by tenant admins, changed by platform admins (BFLA below)",
    "subject": "the kind of the subject_id that follows (key, user or tenant)",
}
PLATFORM_ONLY = {"reservation_id": "a tenant's reservation is seen and changed by platform admins alone"}
POOL = "sim-model"
LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
async def client(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[Client]:
    """A gateway with auth and every optional admin route family on (planning, resources)."""
    assert sim.base_url is not None
    settings = Settings(
        data_dir=tmp_path, features={"auth": True, "planning_api": True, "resources": True},
        auth={"pepper": CANARY_PEPPER, "bootstrap": False},
        models=[{"name": POOL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
        resources={"pools": {POOL: {"sequences": 1000, "kv_tokens": 10_000_000}}},
    )
    async with TestClient(TestServer(await create_app(settings))) as test_client:
        yield test_client


@dataclass(frozen=True)
class Cell:
    """One call on a route: its body, the limits subject it targets, and the status each role at
    or above the route's ``min_role`` gets (the roles below get 403, from the route table)."""

    statuses: dict[str, int]
    body: Any = None
    subject: str | None = None


def every(status: int, *, body: Any = None, subject: str | None = None, **roles: int) -> Cell:
    """``status`` for every role at or above the route's min_role, but those named (tenant_admin=...)."""
    statuses = dict.fromkeys(ROLES, status)
    statuses.update({role.replace("_", "-"): value for role, value in roles.items()})
    return Cell(statuses, body, subject)


FRESH = "{fresh}"  # replaced by a new name in each call
EXPECTED: dict[tuple[str, str], list[Cell]] = {
    ("GET", "/admin/users"): [every(200)],
    ("POST", "/admin/users"): [every(201, body={"name": FRESH})],
    ("GET", "/admin/users/{user_id}"): [every(200)],
    ("PATCH", "/admin/users/{user_id}"): [every(200, body={"disabled": True})],
    ("DELETE", "/admin/users/{user_id}"): [every(204)],
    ("GET", "/admin/keys"): [every(200)],  # members: their own
    ("POST", "/admin/keys"): [every(201, body={"name": "k"})],
    ("GET", "/admin/keys/{key_id}"): [every(200)],  # members: their own key
    ("DELETE", "/admin/keys/{key_id}"): [every(200)],
    ("POST", "/admin/keys/{key_id}/revoke"): [every(200)],
    ("POST", "/admin/keys/{key_id}/rotate"): [every(201)],
    ("GET", "/admin/tenants"): [every(200)],  # tenant admins: their own
    ("POST", "/admin/tenants"): [every(201, body={"id": FRESH})],
    ("GET", "/admin/tenants/{tenant_id}"): [every(200)],
    ("PATCH", "/admin/tenants/{tenant_id}"): [every(200, body={"name": "Renamed"}),  # tenant admins: the name only
                                              every(200, body={"tier": "free"}, tenant_admin=403)],
    ("DELETE", "/admin/tenants/{tenant_id}"): [every(200)],
    ("POST", "/admin/tenants/{tenant_id}/suspend"): [every(200)],
    ("POST", "/admin/tenants/{tenant_id}/resume"): [every(200)],
    ("GET", "/admin/tiers"): [every(200)],
    ("GET", "/admin/tiers/{tier}"): [every(200)],
    ("PUT", "/admin/tiers/{tier}"): [every(200, body={"max_tokens": 10})],
    ("DELETE", "/admin/tiers/{tier}"): [every(204)],
    # members read the limits of their own key and user, not their tenant's
    ("GET", "/admin/limits/{subject}/{subject_id}"): [every(200, subject="key"), every(200, subject="user"),
                                                      every(200, subject="tenant", member=404)],
    ("PUT", "/admin/limits/{subject}/{subject_id}"): [every(200, body={"rpm": 100}, subject=s)
                                                      for s in ("key", "user", "tenant")],
    ("GET", "/admin/audit"): [every(200)],
    ("GET", "/admin/backends"): [every(200)],
    ("GET", "/admin/slo"): [every(200)],  # platform admins only (tiers are shared)
    ("GET", "/admin/engines"): [every(200)],  # platform admins only (the route's min_role)
    ("GET", "/admin/resources"): [every(200)],  # tenant admins: their own tenant's rows
    ("GET", "/admin/reservations"): [every(200)],
    ("POST", "/admin/reservations"): [every(201, body={
        "tenant_id": "acme", "pool": POOL, "sequences": 1, "start": LATER.isoformat(),
        "end": (LATER + timedelta(hours=1)).isoformat()})],
    ("DELETE", "/admin/reservations/{reservation_id}"): [every(204)],
    ("GET", "/admin/usage"): [every(200)],  # any tenant's usage: platform admins alone
    ("GET", "/admin/usage/forecast"): [every(200)],
    ("GET", "/admin/autoscaler"): [every(200)],  # platform admins only (pools are shared)
}


def admin_routes(client: Client) -> list[RouteSpec]:
    return [spec for spec in client.app[DECLARED]
            if spec.canonical.startswith("/admin/") and spec.access.group != "public"]


def below(role: str, spec: RouteSpec) -> bool:
    return ROLE_RANK[role] < ROLE_RANK[spec.access.min_role]


@dataclass
class World:
    client: Client
    stack: AuthStack
    names: Any = field(default_factory=lambda: iter(range(1_000_000)))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    async def tenant(self, tenant_id: str) -> str:
        if await self.stack.store.get_tenant(tenant_id) is None:
            await self.stack.store.add_tenant(Tenant(tenant_id, tenant_id, datetime.now(UTC)))
        return tenant_id

    async def user(self, tenant_id: str, role: str = "member") -> str:
        return (await self.stack.admin.create_user(LOCAL_OPERATOR, self.fresh("u"), role, tenant_id)).id  # type: ignore[arg-type]

    async def key(self, user_id: str) -> tuple[str, str]:
        created = await self.stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user_id, scopes=Scopes(GROUPS))
        return created.key.id, created.token

    async def call(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if isinstance(body, dict):
            body = {name: self.fresh("x") if value == FRESH else value for name, value in body.items()}
        response = await self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status, (await response.json() if response.status != 204 else None)


@dataclass
class Actor:
    role: str
    tenant_id: str
    user_id: str
    token: str


async def actors(world: World) -> dict[str, Actor]:
    found = {}
    for role, tenant in (("member", "acme"), ("tenant-admin", "acme"), ("platform-admin", "default")):
        user_id = await world.user(await world.tenant(tenant), role)
        found[role] = Actor(role, tenant, user_id, (await world.key(user_id))[1])
    return found


def fill(path: str, values: dict[str, str]) -> str:
    return _PARAMETER.sub(lambda found: values[found[1]], path)


async def own_targets(world: World, actor: Actor, subject: str | None) -> dict[str, str]:
    """Objects within the actor's reach, fresh for each call: a member's own user and a second key
    of its own; for admins, a new member of their tenant and its key; for a platform admin a new
    tenant (its own and the default tenant cannot be suspended or deleted) and a new stored tier."""
    user_id = actor.user_id if actor.role == "member" else await world.user(actor.tenant_id)
    key_id, _ = await world.key(user_id)
    tenant_id = await world.tenant(world.fresh("t")) if actor.role == "platform-admin" else actor.tenant_id
    tier = world.fresh("tier")
    services = world.client.app[SERVICES]
    await services.admin.tenant_admin.put_tier(LOCAL_OPERATOR, tier, TierSpec())
    assert services.resources is not None
    reservation = await services.resources.book(actor.tenant_id, POOL, Amount(1, 0), LATER,
                                                LATER + timedelta(hours=1))
    subject_ids = {"key": key_id, "user": user_id, "tenant": tenant_id}
    return {"user_id": user_id, "key_id": key_id, "tenant_id": tenant_id, "tier": tier,
            "subject": subject or "key", "subject_id": subject_ids[subject or "key"],
            "reservation_id": reservation.id}


async def test_every_admin_route_has_an_expectation_and_every_expectation_a_route(client: Client) -> None:
    declared = {(spec.method, spec.canonical) for spec in admin_routes(client)}
    assert declared - set(EXPECTED) == set(), "admin routes without a BFLA expectation: add them to EXPECTED"
    assert set(EXPECTED) - declared == set(), "expectations for routes that no longer exist"
    for spec in admin_routes(client):
        unknown = set(spec.path_params) - set(OWNED) - set(SHARED) - set(PLATFORM_ONLY)
        assert not unknown, f"{spec.method} {spec.canonical}: path parameters {unknown} need a BOLA rule here"
        if set(spec.path_params) & set(PLATFORM_ONLY):  # no tenant-scoped access to check: nobody else reaches it
            assert spec.access.min_role == "platform-admin", (spec.method, spec.canonical)


async def test_bfla_only_the_documented_cells_succeed(client: Client, stack: AuthStack) -> None:
    world = World(client, stack)
    cast = await actors(world)
    failures = []
    for spec in admin_routes(client):
        for cell in EXPECTED[(spec.method, spec.canonical)]:
            for role, actor in cast.items():
                targets = await own_targets(world, actor, cell.subject)
                status, body = await world.call(actor.token, spec.method, fill(spec.canonical, targets), cell.body)
                if below(role, spec):
                    expected, code = 403, "insufficient_role"
                else:
                    expected, code = cell.statuses[role], None
                got_code = body["error"]["code"] if status >= 400 and body else None
                if status != expected or (code is not None and got_code != code):
                    failures.append((role, spec.method, spec.canonical, cell.subject, cell.body, status, body))
    assert failures == []


async def snapshot(world: World, tenant_id: str, subjects: list[tuple[str, str]]) -> tuple[Any, ...]:
    store = world.stack.store
    return (await store.get_tenant(tenant_id),
            await store.list_users(tenant_id=tenant_id, limit=200, after=None),
            await store.list_keys(tenant_id=tenant_id, user_id=None, limit=200, after=None),
            await SqlLimitStore(world.stack.database).get_many(subjects))


async def test_bola_another_tenants_objects_are_404_and_untouched(client: Client, stack: AuthStack) -> None:
    world = World(client, stack)
    cast = await actors(world)
    victim_tenant = await world.tenant("globex")
    victim_admin = await world.user(victim_tenant, "tenant-admin")
    victim_key, victim_token = await world.key(victim_admin)
    subjects = [("key", victim_key), ("user", victim_admin), ("tenant", victim_tenant)]
    for subject, subject_id in subjects:
        await SqlLimitStore(stack.database).put(subject, subject_id, Overrides(rpm=7))
    victim = {"user_id": victim_admin, "key_id": victim_key, "tenant_id": victim_tenant}
    nowhere = {"user_id": "u_0000000000000000", "key_id": "aaaaaaaaaaaa", "tenant_id": "no-such-tenant"}
    before = await snapshot(world, victim_tenant, subjects)
    checked, failures = 0, []
    for spec in admin_routes(client):
        owned = [param for param in spec.path_params if param in OWNED]
        if not owned:
            continue
        for cell in EXPECTED[(spec.method, spec.canonical)]:
            subject = cell.subject or "key"
            for ids in (victim, nowhere):
                values = {**ids, "tier": "free", "subject": subject,
                          "subject_id": ids[{"key": "key_id", "user": "user_id", "tenant": "tenant_id"}[subject]]}
                path = fill(spec.canonical, values)
                for role in ("member", "tenant-admin"):
                    status, body = await world.call(cast[role].token, spec.method, path, cell.body)
                    expected = (403, "insufficient_role") if below(role, spec) else (404, None)
                    if status != expected[0] or (expected[1] and body["error"]["code"] != expected[1]):
                        failures.append((role, spec.method, path, status, body))
                    elif status == 404:
                        assert body["error"]["type"] == "not_found_error"
                    checked += 1
                    assert await snapshot(world, victim_tenant, subjects) == before, (role, spec.method, path)
    assert failures == []
    assert checked >= 60
    status, _ = await world.call(victim_token, "GET", "/admin/keys")
    assert status == 200  # the victim's key still works: neither revoked nor rotated


async def test_a_foreign_id_answers_exactly_like_a_missing_one(client: Client, stack: AuthStack) -> None:
    """No existence oracle: the same status, code and message for another tenant's object as for none."""
    world = World(client, stack)
    cast = await actors(world)
    other = await world.user(await world.tenant("globex"))
    other_key, _ = await world.key(other)
    pairs: list[tuple[str, str, str]] = [
        ("GET", f"/admin/users/{other}", "/admin/users/u_0000000000000000"),
        ("GET", f"/admin/keys/{other_key}", "/admin/keys/aaaaaaaaaaaa"),
        ("GET", "/admin/tenants/globex", "/admin/tenants/nowhere"),
        ("GET", f"/admin/limits/user/{other}", "/admin/limits/user/u_0000000000000000"),
        ("PUT", "/admin/limits/tenant/globex", "/admin/limits/tenant/nowhere"),
    ]
    admin = cast["tenant-admin"].token
    for method, foreign, missing in pairs:
        body = {"rpm": 1} if method == "PUT" else None
        assert await world.call(admin, method, foreign, body) == await world.call(admin, method, missing, body), foreign
