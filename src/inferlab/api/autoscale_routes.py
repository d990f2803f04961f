"""``GET /admin/autoscaler``: per autoscaled pool, its replicas (current, ready, desired), bounds,
policy, actuator state and its last decisions with their inputs (platform admins only: engines are
shared). With autoscaling off it answers ``enabled: false`` and no pools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN


class AutoscaleRoutes:
    def __init__(self, report: Callable[[], dict[str, Any]] | None) -> None:
        self._report = report

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/autoscaler", self.report, PLATFORM_ADMIN,
                          "Autoscaled pools: current, ready and desired replicas, and the last decisions with their "
                          "inputs", ("autoscale",))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def report(self, request: web.Request) -> web.Response:
        body = self._report() if self._report is not None else {"object": "autoscaler", "enabled": False, "data": []}
        return web.Response(body=orjson.dumps(body), content_type="application/json")
