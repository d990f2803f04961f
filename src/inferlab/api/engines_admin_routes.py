"""``GET /admin/engines``: every engine InferLab runs: each group with its ranks, where they are
placed (provider, node, host, port, pid), its state, restarts and recent transitions; and each
single managed engine as a group of one rank.

Platform admins only: tenant admins don't see shared infrastructure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN


class EnginesAdminRoutes:
    def __init__(self, report: Callable[[], dict[str, Any]]) -> None:
        self._report = report

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/engines", self.engines, PLATFORM_ADMIN,
                          "Engine groups: ranks, placement, state, restarts and recent transitions", ("backends",))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def engines(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self._report()), content_type="application/json")
