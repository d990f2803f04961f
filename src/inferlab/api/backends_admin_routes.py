"""``GET /admin/backends``: every pool and replica with health, breaker, load and routing stats,
and each pool's queue figures (from the scheduler).

Under ``/admin/*``, which the auth layer reserves for administrators.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.router import ModelRouter
from inferlab.scheduler import QueueManager


class BackendsAdminRoutes:
    def __init__(self, router: ModelRouter, queues: QueueManager) -> None:
        self._router = router
        self._queues = queues

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/admin/backends", self.backends)

    async def backends(self, request: web.Request) -> web.Response:
        pools = [
            {"role": role, **pool.snapshot(), "queue": self._queues.snapshot(pool)}
            for role, pool in self._router.all_pools()
        ]
        return web.Response(body=orjson.dumps({"object": "list", "data": pools}), content_type="application/json")
