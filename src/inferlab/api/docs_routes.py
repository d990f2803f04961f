"""The API description, generated from every declared route: ``/openapi.json`` (the OpenAI-compatible
API, the planning calculators and the operational routes), ``/admin/openapi.json`` (the admin API)
and ``/docs`` (both, as one HTML page).

``server.docs`` (default on) publishes them without credentials: they describe routes, never data.
Off, there is no ``/docs`` and the documents need a credential of their route group, so nobody
without one learns the route map.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import orjson
from aiohttp import web

from inferlab.api.docs_page import render_page
from inferlab.api.openapi import openapi_document
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import ADMIN_SELF, INFERENCE, PUBLIC

API, ADMIN = "/openapi.json", "/admin/openapi.json"
AUTH_NOTE = ("Access rules apply when `features.auth` is on: send `Authorization: Bearer <key>` or "
             "`x-api-key: <key>`. Errors have the OpenAI shape `{\"error\": {message, type, code, param}}`.")


class DocsRoutes:
    def __init__(self, declared: Sequence[RouteSpec], *, public: bool) -> None:
        self._public = public
        every = [*declared, *self.routes()]
        self._admin = [spec for spec in every if spec.canonical.startswith("/admin/")]
        self._api = [spec for spec in every if not spec.canonical.startswith("/admin/")]

    def routes(self) -> list[RouteSpec]:
        tags = ("documentation",)
        specs = [
            RouteSpec("GET", API, self.api_document, PUBLIC if self._public else INFERENCE,
                      "This document: the OpenAI-compatible, planning and operational routes", tags),
            RouteSpec("GET", ADMIN, self.admin_document, PUBLIC if self._public else ADMIN_SELF,
                      "The admin API's OpenAPI document", tags),
        ]
        if self._public:
            specs.append(RouteSpec("GET", "/docs", self.page, PUBLIC, "Both documents as an HTML page", tags))
        return specs

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def api_document(self, request: web.Request) -> web.Response:
        return web.Response(body=self._rendered[0], content_type="application/json")

    async def admin_document(self, request: web.Request) -> web.Response:
        return web.Response(body=self._rendered[1], content_type="application/json")

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._rendered[2], content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    @cached_property
    def _rendered(self) -> tuple[bytes, bytes, bytes]:
        """Built on first use (the routes do not change once the app is built)."""
        api = openapi_document(self._api, title="InferLab API", description=(
            "The OpenAI-compatible inference API, the planning calculators and the operational routes. " + AUTH_NOTE))
        admin = openapi_document(self._admin, title="InferLab admin API", description=(
            "Users, API keys, tenants, stored limits, the audit log and the backend pools. Nobody grants more "
            "than their own rights; another tenant's objects answer 404. " + AUTH_NOTE))
        page = render_page([("api", API, api), ("admin", ADMIN, admin)])
        return orjson.dumps(api), orjson.dumps(admin), page.encode()
