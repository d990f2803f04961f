"""``KubeScaleSimulator``: the Kubernetes API's Deployment ``scale`` subresource on a local port.

Serves ``GET`` and ``PATCH`` (JSON merge patch, ``application/merge-patch+json``) on
``/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`` for the deployments it is given, with
the API server's shapes (``autoscaling/v1`` ``Scale``; ``Status`` objects for errors: 404 for an
unknown deployment, 415 for another patch type, 422 for a negative count, 401 without the bearer
token when one is set). ``status.replicas`` follows ``spec.replicas`` after ``ready_delay_s``, as
a ReplicaSet's pods would. Every request is recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web

PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"


@dataclass
class Deployment:
    spec: int = 1
    status: int = 1
    generation: int = 1


@dataclass
class KubeScaleSimulator:
    deployments: dict[tuple[str, str], Deployment] = field(default_factory=dict)
    token: str | None = None
    ready_delay_s: float = 0.0
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    base_url: str | None = None
    _runner: web.AppRunner | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def add(self, namespace: str, name: str, replicas: int = 1) -> None:
        self.deployments[(namespace, name)] = Deployment(replicas, replicas)

    @staticmethod
    def _status(code: int, reason: str, message: str) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
                "code": code}
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")

    def _scale(self, namespace: str, name: str, deployment: Deployment) -> web.Response:
        body = {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": namespace, "generation": deployment.generation},
                "spec": {"replicas": deployment.spec}, "status": {"replicas": deployment.status}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _handle(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        body = await request.read()
        self.requests.append((request.method, request.path, orjson.loads(body) if body else None))
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._status(401, "Unauthorized", "Unauthorized")
        deployment = self.deployments.get((namespace, name))
        if deployment is None:
            return self._status(404, "NotFound", f'deployments.apps "{name}" not found')
        if request.method == "PATCH":
            if request.content_type != "application/merge-patch+json":
                return self._status(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                                    "format - accepted media types include: application/merge-patch+json")
            try:
                replicas = orjson.loads(body)["spec"]["replicas"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return self._status(400, "BadRequest", "the patch must set spec.replicas")
            if not isinstance(replicas, int) or replicas < 0:
                return self._status(422, "Invalid", "spec.replicas: Invalid value: must be greater than or equal to 0")
            deployment.spec = replicas
            deployment.generation += 1
            if self.ready_delay_s <= 0:
                deployment.status = replicas
            else:
                task = asyncio.create_task(self._follow(deployment, replicas))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        return self._scale(namespace, name, deployment)

    async def _follow(self, deployment: Deployment, replicas: int) -> None:
        await asyncio.sleep(self.ready_delay_s)
        if deployment.spec == replicas:
            deployment.status = replicas

    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application()
        app.router.add_route("GET", PATH, self._handle)
        app.router.add_route("PATCH", PATH, self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
