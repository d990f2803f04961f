"""Route declarations: each route family lists its routes, with their access rule and what the
API description says about them, beside its handlers.

One ``RouteSpec`` per method and path is the single source of three things that used to be three
hand-kept lists: the aiohttp registration (``add_routes``), the access rule the auth middleware
applies (``access_rules`` → ``inferlab.auth.policy.RoutePolicy``, assembled by the composition
root from every family's specs) and the OpenAPI documents (``inferlab.api.openapi``). A route
registered any other way (a plain ``app.router.add_get``) has no rule, so the middleware refuses
it (403 ``no_policy``) and the route-inventory test fails.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from inferlab.api.expect import expect_continue
from inferlab.auth.policy import RouteRule

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

_PATTERN = re.compile(r"\{(\w+):[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")  # {name:regex} → {name}
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Schema:
    """A JSON schema written by hand (the OpenAI bodies: known fields checked, others passed on)."""

    name: str
    json: Mapping[str, Any]


Body = type[BaseModel] | Schema  # a pydantic model is described by its own JSON schema


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter, or a path parameter whose description or schema is more than a string."""

    name: str
    description: str = ""
    where: Literal["query", "path"] = "query"
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: where it is, who may call it, and what its documentation says.

    ``errors`` are the statuses the route answers with an OpenAI-shaped error, besides 401/403/503
    (implied by a non-public rule) and 400/408/413/415 (by a body); ``description`` defaults to the
    handler's docstring.
    """

    method: Method
    path: str  # as registered: may hold a pattern ({model_id:.+})
    handler: Handler
    access: RouteRule
    summary: str
    tags: tuple[str, ...] = ()
    body: Body | None = None
    response: Body | None = None
    status: int = 200
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    streams: bool = False  # text/event-stream when the body asks for `stream`
    description: str | None = None
    max_body_bytes: int | None = None  # the largest body it takes, when not the app's client_max_size

    @property
    def canonical(self) -> str:
        """The path as aiohttp reports the matched route (``/v1/models/{model_id}``)."""
        return _PATTERN.sub(r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return _PARAMETER.findall(self.canonical)


def add_routes(app: web.Application, specs: Iterable[RouteSpec]) -> list[RouteSpec]:
    """Register the declared routes (GET also answers HEAD); returns them for the composition root.
    A body is invited (``Expect: 100-continue``) only within the route's limit (``api/expect``)."""
    added = list(specs)
    for spec in added:
        if spec.method == "GET":
            app.router.add_get(spec.path, spec.handler)
        else:
            app.router.add_route(spec.method, spec.path, spec.handler,
                                 expect_handler=partial(expect_continue, limit=spec.max_body_bytes))
    return added


def access_rules(specs: Iterable[RouteSpec]) -> dict[tuple[str, str], RouteRule]:
    """The route policy's table: (method, canonical path) → rule; a route declared twice is a bug."""
    rules: dict[tuple[str, str], RouteRule] = {}
    for spec in specs:
        key = (spec.method, spec.canonical)
        if key in rules:
            raise ValueError(f"route declared twice: {spec.method} {spec.canonical}")
        rules[key] = spec.access
    return rules


DECLARED = web.AppKey("declared_routes", tuple)  # every declared route of the app: its rule, its documentation
