"""``GET /admin/backends``: every pool and replica with health, breaker, load and routing stats,
and each pool's queue figures (from the scheduler).

Platform admins only: tenant admins don't see shared infrastructure.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN
from inferlab.router import ModelRouter
from inferlab.scheduler import QueueManager


class BackendsAdminRoutes:
    def __init__(self, router: ModelRouter, queues: QueueManager) -> None:
        self._router = router
        self._queues = queues

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/backends", self.backends, PLATFORM_ADMIN,
                          "Every pool and replica: health, breaker, load, routing stats and the queue", ("backends",))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def backends(self, request: web.Request) -> web.Response:
        pools = [
            {"role": role, **pool.snapshot(), "queue": self._queues.snapshot(pool)}
            for role, pool in self._router.all_pools()
        ]
        return web.Response(body=orjson.dumps({"object": "list", "data": pools}), content_type="application/json")
