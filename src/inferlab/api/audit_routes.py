"""``GET /admin/audit``: the admin actions' audit log, newest first.

Query: ``limit``, ``after`` (the last id of the previous page), ``tenant_id`` (platform admins),
``action`` (``key.create``, ``limits.set``...), ``target_id``. Tenant admins read their tenant's
rows only (``inferlab.auth.audit``).
"""

from __future__ import annotations

from aiohttp import web

from inferlab.api.admin_routes import PAGE, _actor, _page, paging, query_id
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.audit import ACTIONS, AuditLog, event_json
from inferlab.auth.policy import TENANT_ADMIN
from inferlab.errors import InvalidRequest


class AuditRoutes:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def routes(self) -> list[RouteSpec]:
        filters = (Param("tenant_id", "platform admins: only this tenant's rows"),
                   Param("action", "only this action", schema={"enum": sorted(ACTIONS)}),
                   Param("target_id", "only rows about this key, user or tenant"))
        # tenant admins: their tenant's rows (inferlab.auth.audit)
        return [RouteSpec("GET", "/admin/audit", self.list, TENANT_ADMIN,
                          "List admin actions, newest first (tenant admins: their tenant)", ("audit",),
                          params=(*PAGE, *filters), errors=(400,))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def list(self, request: web.Request) -> web.Response:
        limit, after = paging(request)
        action = request.query.get("action")
        if action is not None and action not in ACTIONS:
            raise InvalidRequest(f"action must be one of {', '.join(sorted(ACTIONS))}", param="action",
                                 code="invalid_value")
        events = await self._audit.list(_actor(request), limit + 1, after, tenant_id=query_id(request, "tenant_id"),
                                        action=action, target_id=query_id(request, "target_id"))
        return _page([event_json(event) for event in events], limit)
