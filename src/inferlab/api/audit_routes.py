"""``GET /admin/audit``: the admin actions' audit log, newest first.

Query: ``limit``, ``after`` (the last id of the previous page), ``tenant_id`` (platform admins),
``action`` (``key.create``, ``limits.set``...), ``target_id``. Tenant admins read their tenant's
rows only (``inferlab.auth.audit``).
"""

from __future__ import annotations

from aiohttp import web

from inferlab.api.admin_routes import _actor, _page, paging, query_id
from inferlab.auth.audit import ACTIONS, AuditLog, event_json
from inferlab.errors import InvalidRequest


class AuditRoutes:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/admin/audit", self.list)

    async def list(self, request: web.Request) -> web.Response:
        limit, after = paging(request)
        action = request.query.get("action")
        if action is not None and action not in ACTIONS:
            raise InvalidRequest(f"action must be one of {', '.join(sorted(ACTIONS))}", param="action",
                                 code="invalid_value")
        events = await self._audit.list(_actor(request), limit + 1, after, tenant_id=query_id(request, "tenant_id"),
                                        action=action, target_id=query_id(request, "target_id"))
        return _page([event_json(event) for event in events], limit)
