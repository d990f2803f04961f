"""``GET /admin/backends``: every pool and replica with health, breaker, load and routing stats.

Under ``/admin/*``, which the auth layer reserves for administrators.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.router import ModelRouter


class BackendsAdminRoutes:
    def __init__(self, router: ModelRouter) -> None:
        self._router = router

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/admin/backends", self.backends)

    async def backends(self, request: web.Request) -> web.Response:
        pools = [{"role": role, **pool.snapshot()} for role, pool in self._router.all_pools()]
        return web.Response(body=orjson.dumps({"object": "list", "data": pools}), content_type="application/json")
