"""``GET /admin/backends``: every pool and replica with health, breaker, load and routing stats.

Platform admins only: tenant admins don't see shared infrastructure.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN
from inferlab.router import ModelRouter


class BackendsAdminRoutes:
    def __init__(self, router: ModelRouter) -> None:
        self._router = router

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/backends", self.backends, PLATFORM_ADMIN,
                          "Every pool and replica: health, breaker, load and routing stats", ("backends",))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def backends(self, request: web.Request) -> web.Response:
        pools = [{"role": role, **pool.snapshot()} for role, pool in self._router.all_pools()]
        return web.Response(body=orjson.dumps({"object": "list", "data": pools}), content_type="application/json")
