"""``GET /admin/anomalies``: the anomaly detector's open incidents and the recent closed ones, each
with its evidence (the strongest and the latest detection: rule, robust z, value, expectation).
Platform admins only: subjects span tenants. Read from the store, so any gateway answers."""

from __future__ import annotations

import orjson
from aiohttp import web

from inferlab.anomaly.service import AnomalyDetector
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN
from inferlab.errors import InvalidRequest

STATES = ("open", "all")


class AnomalyRoutes:
    def __init__(self, detector: AnomalyDetector) -> None:
        self._detector = detector

    def routes(self) -> list[RouteSpec]:
        return [RouteSpec("GET", "/admin/anomalies", self.incidents, PLATFORM_ADMIN,
                          "Anomaly incidents: open, then the recent closed ones, with their evidence", ("anomaly",),
                          params=(Param("state", "open: only the open incidents; all (default): also the recent "
                                                 "closed ones", schema={"type": "string", "enum": list(STATES)}),),
                          errors=(400,))]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def incidents(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"state"})
        if unknown:
            raise InvalidRequest(f"unknown parameter {unknown[0]!r}", param=unknown[0])
        state = request.query.get("state", "all")
        if state not in STATES:
            raise InvalidRequest(f"state must be one of {', '.join(STATES)}, got {state!r}", param="state")
        found = await self._detector.incidents(open_only=state == "open")
        body = {"object": "list", "interval_s": self._detector.settings.interval_s,
                "quiet_intervals": self._detector.settings.quiet_intervals,
                "open": sum(1 for i in found if i.closed_at is None), "data": [i.as_json() for i in found]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")
