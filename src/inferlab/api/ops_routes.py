"""Operational routes: liveness, readiness (the rule is in ``api/readiness.py``), Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from inferlab.api.readiness import Readiness
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN, PUBLIC
from inferlab.dependencies import Dependencies
from inferlab.drain import DrainController
from inferlab.metrics import GatewayMetrics
from inferlab.router import ModelRouter


class OpsRoutes:
    def __init__(
        self,
        router: ModelRouter,
        drain: DrainController,
        metrics: GatewayMetrics | None,
        engine_states: Callable[[], dict[str, str]],
        dependencies: Dependencies | None = None,
    ) -> None:
        self._metrics = metrics
        self._dependencies = dependencies or Dependencies()
        self._readiness = Readiness(router, drain, self._dependencies, engine_states)

    def routes(self, *, protect_metrics: bool = False) -> list[RouteSpec]:
        """``protect_metrics`` (auth.protect_metrics): /metrics needs a platform admin."""
        specs = [
            RouteSpec("GET", "/health", self.health, PUBLIC, "Liveness: the process answers", ("operations",)),
            RouteSpec("GET", "/ready", self.ready, PUBLIC,
                      "Readiness: 200 when this gateway should get traffic, else 503", ("operations",),
                      params=(Param("model", "whether this model on this gateway should get traffic "
                                             "(404 for an unknown model)"),)),
        ]
        if self._metrics is not None:
            specs.append(RouteSpec("GET", "/metrics", self.metrics, PLATFORM_ADMIN if protect_metrics else PUBLIC,
                                   "Prometheus metrics (text exposition format)", ("operations",)))
        return specs

    def add_to(self, app: web.Application, *, protect_metrics: bool = False) -> list[RouteSpec]:
        app.on_cleanup.append(self._close)
        return add_routes(app, self.routes(protect_metrics=protect_metrics))

    async def _close(self, _: web.Application) -> None:
        await self._dependencies.close()

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        """200 when this gateway (``?model=NAME``: this model on it) should be sent traffic, else 503."""
        model = request.query.get("model")
        status, body = await (self._readiness.gateway() if model is None else self._readiness.model(model))
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        states = await self._dependencies.states()  # cached and bounded: a scrape never waits long
        self._metrics.dependencies_checked({name: state["status"] == "up" for name, state in states.items()})
        return web.Response(body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type})
