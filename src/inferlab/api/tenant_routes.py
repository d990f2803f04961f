"""The tenant and tier admin API: ``/admin/tenants`` and ``/admin/tiers`` (``TenantManager``)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import Field

from inferlab.api.admin_routes import (
    LISTED,
    ONE,
    PAGE,
    Name,
    TenantId,
    _actor,
    _Body,
    _json,
    _page,
    _request_id,
    paging,
    parse_body,
    path_id,
)
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.model import Tenant
from inferlab.auth.policy import PLATFORM_ADMIN, TENANT_ADMIN
from inferlab.auth.views import tenant_json
from inferlab.config.tenants import TIER_NAME, TierSpec
from inferlab.errors import NotFound
from inferlab.tenants.manager import KEEP, TenantManager, TierView


class TenantIn(_Body):
    id: TenantId
    name: Name | None = None
    tier: str | None = Field(None, pattern=TIER_NAME, description="default: tenants.default_tier")
    overrides: dict[str, Any] | None = Field(None, description="tier fields for this tenant alone")


class TenantPatch(_Body):
    name: Name | None = None
    tier: str | None = Field(None, pattern=TIER_NAME, description="null: back to the default tier")
    overrides: dict[str, Any] | None = Field(None, description="replaces the overrides; null: none")


def tier_json(view: TierView) -> dict[str, Any]:
    return {"object": "tier", **view.as_json()}


class TenantRoutes:
    def __init__(self, manager: TenantManager, max_body_bytes: int, default_tier: str) -> None:
        self._manager = manager
        self._limit = max_body_bytes
        self._default_tier = default_tier

    def routes(self) -> list[RouteSpec]:
        tenants, tiers = ("tenants",), ("tiers",)
        return [
            RouteSpec("GET", "/admin/tenants", self.list_tenants, TENANT_ADMIN,
                      "List tenants (tenant admins: their own)", tenants, params=PAGE, errors=LISTED),
            RouteSpec("POST", "/admin/tenants", self.create_tenant, PLATFORM_ADMIN, "Create a tenant on a tier",
                      tenants, TenantIn, status=201),
            RouteSpec("GET", "/admin/tenants/{tenant_id}", self.get_tenant, TENANT_ADMIN, "Show a tenant", tenants,
                      errors=ONE),
            RouteSpec("PATCH", "/admin/tenants/{tenant_id}", self.update_tenant, TENANT_ADMIN,
                      "Rename a tenant; platform admins: change its tier and overrides", tenants, TenantPatch,
                      errors=ONE),
            RouteSpec("DELETE", "/admin/tenants/{tenant_id}", self.delete_tenant, PLATFORM_ADMIN,
                      "Close a tenant: its users are disabled and its keys revoked; its usage is kept", tenants,
                      errors=ONE),
            RouteSpec("POST", "/admin/tenants/{tenant_id}/suspend", self.suspend_tenant, PLATFORM_ADMIN,
                      "Suspend a tenant: 403 on every route, its streams in flight end", tenants, errors=ONE),
            RouteSpec("POST", "/admin/tenants/{tenant_id}/resume", self.resume_tenant, PLATFORM_ADMIN,
                      "Resume a suspended tenant", tenants, errors=ONE),
            RouteSpec("GET", "/admin/tiers", self.list_tiers, TENANT_ADMIN, "List the tiers", tiers),
            RouteSpec("GET", "/admin/tiers/{tier}", self.get_tier, TENANT_ADMIN, "Show a tier", tiers, errors=ONE),
            RouteSpec("PUT", "/admin/tiers/{tier}", self.put_tier, PLATFORM_ADMIN,
                      "Add a tier, or replace one (a stored tier shadows a shipped or configured one)", tiers,
                      TierSpec),
            RouteSpec("DELETE", "/admin/tiers/{tier}", self.delete_tier, PLATFORM_ADMIN,
                      "Delete a stored tier (not while tenants are on it)", tiers, status=204, errors=ONE),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    def _tenant(self, tenant: Tenant) -> dict[str, Any]:
        return {**tenant_json(tenant), "effective_tier": tenant.tier or self._default_tier}

    async def list_tenants(self, request: web.Request) -> web.Response:
        limit, after = paging(request)
        found = await self._manager.list_tenants(_actor(request), limit + 1, after)
        return _page([self._tenant(t) for t in found], limit)

    async def create_tenant(self, request: web.Request) -> web.Response:
        body = await parse_body(request, TenantIn, self._limit)
        tenant = await self._manager.create(_actor(request), body.id, body.name, tier=body.tier,
                                            overrides=body.overrides, request_id=_request_id(request))
        return _json(self._tenant(tenant), 201)

    async def get_tenant(self, request: web.Request) -> web.Response:
        return _json(self._tenant(await self._manager.get(_actor(request), _tenant_id(request))))

    async def update_tenant(self, request: web.Request) -> web.Response:
        tenant_id = _tenant_id(request)
        body = await parse_body(request, TenantPatch, self._limit)
        given = body.model_fields_set
        tenant = await self._manager.update(
            _actor(request), tenant_id,
            name=body.name if "name" in given and body.name is not None else KEEP,
            tier=body.tier if "tier" in given else KEEP,
            overrides=body.overrides if "overrides" in given else KEEP, request_id=_request_id(request))
        return _json(self._tenant(tenant))

    async def delete_tenant(self, request: web.Request) -> web.Response:
        tenant = await self._manager.delete(_actor(request), _tenant_id(request), request_id=_request_id(request))
        return _json(self._tenant(tenant))

    async def suspend_tenant(self, request: web.Request) -> web.Response:
        tenant = await self._manager.set_status(_actor(request), _tenant_id(request), "suspended",
                                                request_id=_request_id(request))
        return _json(self._tenant(tenant))

    async def resume_tenant(self, request: web.Request) -> web.Response:
        tenant = await self._manager.set_status(_actor(request), _tenant_id(request), "active",
                                                request_id=_request_id(request))
        return _json(self._tenant(tenant))

    async def list_tiers(self, request: web.Request) -> web.Response:
        views = await self._manager.tiers(_actor(request))
        return _json({"object": "list", "data": [tier_json(view) for view in views], "has_more": False,
                      "next_after": None})

    async def get_tier(self, request: web.Request) -> web.Response:
        return _json(tier_json(await self._manager.tier(_actor(request), _tier_name(request))))

    async def put_tier(self, request: web.Request) -> web.Response:
        name = _tier_name(request)
        spec = await parse_body(request, TierSpec, self._limit)
        view = await self._manager.put_tier(_actor(request), name, spec, request_id=_request_id(request))
        return _json(tier_json(view))

    async def delete_tier(self, request: web.Request) -> web.Response:
        await self._manager.delete_tier(_actor(request), _tier_name(request), request_id=_request_id(request))
        return web.Response(status=204)


def _tenant_id(request: web.Request) -> str:
    return path_id(request, "tenant_id", "tenant")


def _tier_name(request: web.Request) -> str:
    name = request.match_info["tier"]
    if not re.match(TIER_NAME, name):
        raise NotFound("No such tier")
    return name

