"""HTTP API for dashboards: ``/v1/planning/...`` on an aiohttp application.

Handlers parse JSON with orjson, validate with the pydantic shapes in :mod:`schemas` and raise
:class:`~inferlab.errors.InvalidRequest` for bad input; the app's error middleware turns that into
a 400 with an OpenAI-shaped body.

A model that does not fit the devices is an answer, not an error: ``estimate`` and ``cost`` reply
200 with ``"fits": false`` and the ``reason``; ``cost`` then carries no price (every price field is
null), so a dashboard comparing set-ups never shows a price for one that cannot run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from inferlab.api.body import read_body
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import INFERENCE
from inferlab.errors import InvalidRequest
from inferlab.planning import service
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.schemas import CapacityIn, CostIn, EstimateIn, VramIn, parse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 64 * 1024


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


async def _body(request: web.Request) -> Any:
    raw = await read_body(request, MAX_BODY_BYTES)
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", param=None) from exc


def _post(catalogue: Catalogue, shape: type[BaseModel], compute: Callable[[Catalogue, Any], dict[str, Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        req = parse(shape, await _body(request))
        return _json(compute(catalogue, req))

    return handler


def planning_routes(catalogue: Catalogue) -> list[RouteSpec]:
    """POST /v1/planning/{vram,estimate,cost,capacity} and GET /v1/planning/catalogue."""
    summary = service.catalogue_summary(catalogue)

    async def get_catalogue(request: web.Request) -> web.Response:
        return _json(summary)

    def post(path: str, shape: type[BaseModel], compute: Callable[[Catalogue, Any], dict[str, Any]],
             what: str) -> RouteSpec:
        return RouteSpec("POST", path, _post(catalogue, shape, compute), INFERENCE, what, ("planning",), shape,
                         max_body_bytes=MAX_BODY_BYTES)

    return [
        RouteSpec("GET", "/v1/planning/catalogue", get_catalogue, INFERENCE,
                  "The models, accelerators, engines and prices the calculators know", ("planning",)),
        post("/v1/planning/vram", VramIn, service.vram, "Memory a deployment needs: weights, KV cache, overhead"),
        post("/v1/planning/estimate", EstimateIn, service.estimate,
             "Whether it fits, and its speed: time to first token, tokens per second"),
        post("/v1/planning/cost", CostIn, service.cost, "Cost per million tokens, owned and rented, and the break-even"),
        post("/v1/planning/capacity", CapacityIn, service.capacity, "Replicas and GPUs a load needs within the latency SLOs"),
    ]


def add_planning_routes(app: web.Application, catalogue: Catalogue) -> list[RouteSpec]:
    return add_routes(app, planning_routes(catalogue))
