"""Operational routes: liveness, readiness (the rule is in ``api/readiness.py``), Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from inferlab.api.readiness import Readiness
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

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        if self._metrics is not None:
            app.router.add_get("/metrics", self.metrics)
        app.on_cleanup.append(self._close)

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
        return web.Response(body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type})
