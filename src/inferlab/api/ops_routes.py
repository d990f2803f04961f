"""Operational routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from inferlab.api.drain import DrainController
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import PLATFORM_ADMIN, PUBLIC
from inferlab.metrics import GatewayMetrics
from inferlab.router import ModelRouter


class OpsRoutes:
    def __init__(
        self,
        router: ModelRouter,
        drain: DrainController,
        metrics: GatewayMetrics | None,
        engine_states: Callable[[], dict[str, str]],
    ) -> None:
        self._router = router
        self._drain = drain
        self._metrics = metrics
        self._engine_states = engine_states

    def routes(self, *, protect_metrics: bool = False) -> list[RouteSpec]:
        """``protect_metrics`` (auth.protect_metrics): /metrics needs a platform admin."""
        specs = [
            RouteSpec("GET", "/health", self.health, PUBLIC, "Liveness: the process answers", ("operations",)),
            RouteSpec("GET", "/ready", self.ready, PUBLIC,
                      "Readiness: 200 when this gateway should get traffic, else 503", ("operations",)),
        ]
        if self._metrics is not None:
            specs.append(RouteSpec("GET", "/metrics", self.metrics, PLATFORM_ADMIN if protect_metrics else PUBLIC,
                                   "Prometheus metrics (text exposition format)", ("operations",)))
        return specs

    def add_to(self, app: web.Application, *, protect_metrics: bool = False) -> list[RouteSpec]:
        return add_routes(app, self.routes(protect_metrics=protect_metrics))

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        models = {name: self._router.is_ready(name) for name in self._router.names()}
        ready = not self._drain.draining and bool(models) and all(models.values())
        body = {
            "status": "ready" if ready else ("draining" if self._drain.draining else "not_ready"),
            "models": models,
            "engines": self._engine_states(),
        }
        return web.Response(status=200 if ready else 503, body=orjson.dumps(body), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        return web.Response(body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type})
