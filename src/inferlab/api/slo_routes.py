"""``GET /admin/slo``: per tier and model, over each configured window, the SLOs' attainment, p95s
and error-budget burn rates as this gateway measured them (platform admins only: tiers are shared).
Across gateway replicas, read ``inferlab_slo_requests_total`` in Prometheus instead."""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN
from inferlab.slo.tracker import SloTracker


class SloRoutes:
    def __init__(self, tracker: SloTracker, windows_s: list[float]) -> None:
        self._tracker = tracker
        self._windows_s = windows_s

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/slo", self.report, PLATFORM_ADMIN,
                          "SLO attainment and error-budget burn rate per tier and model, per window", ("slo",))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def report(self, request: web.Request) -> web.Response:
        body = {"object": "list", "windows_s": self._windows_s, "data": self._tracker.report()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")
