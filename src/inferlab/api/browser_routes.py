"""The browser hybrid's routes (``features.browser``):

- ``GET /v1/browser/models``: the browser model catalogue, with the caller's tier's fallback policy
  and where the client runtime is;
- ``GET /browser/models/{name}.gguf``: a model file (public: the catalogue's models are open
  weights), with ``Range`` requests, ``ETag``/``If-None-Match``, ``Cache-Control`` and the
  cross-origin headers a page needs to load it under cross-origin isolation (wllama's threads);
- ``POST /v1/browser/usage``: one local generation's usage into the ledger (``browser/reports.py``);
- ``GET /playground`` and ``GET /browser/client/{file}``: the demo page and the built client
  (``clients/browser/dist``: the bundle, wllama's ESM and its WebAssembly), served with
  ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from aiohttp import web

from inferlab.api.middleware import TENANT, read_json
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.policy import INFERENCE, PUBLIC
from inferlab.browser.build import Browser
from inferlab.errors import NotFound, ServiceUnavailable
from inferlab.types import Caller

CLIENT = "/browser/client/"
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "cross-origin"}
SHARED = {"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin",
          "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, Accept-Ranges, x-inferlab-sha256"}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".map": "application/json",
         ".html": "text/html", ".css": "text/css", ".json": "application/json", ".gguf": "application/octet-stream"}
USAGE_BODY_BYTES = 16 * 1024


class BrowserRoutes:
    def __init__(self, browser: Browser, caller_of: Callable[[web.Request], Caller]) -> None:
        self._browser = browser
        self._caller_of = caller_of

    def routes(self) -> list[RouteSpec]:
        tags = ("browser",)
        specs = [
            RouteSpec("GET", "/v1/browser/models", self.models, INFERENCE,
                      "The models a browser may run itself, and whether your tier may fall back to the server", tags),
            RouteSpec("GET", r"/browser/models/{file:[A-Za-z0-9][A-Za-z0-9._-]*\.gguf}", self.model_file, PUBLIC,
                      "A browser model's GGUF file (Range requests, ETag, cross-origin headers)", tags,
                      errors=(404, 416)),
            RouteSpec("GET", "/playground", self.playground, PUBLIC,
                      "The browser hybrid's demo chat: where each answer ran, its speed, the fallback reason", tags),
            RouteSpec("GET", r"/browser/client/{file:[A-Za-z0-9][A-Za-z0-9._-]*}", self.client_file, PUBLIC,
                      "The built browser client: its bundle, wllama's runtime and WebAssembly", tags, errors=(404,)),
        ]
        if self._browser.reports is not None:
            specs.append(RouteSpec("POST", "/v1/browser/usage", self.usage, INFERENCE,
                                   "Report one generation that ran in the browser: it joins the usage ledger, "
                                   "marked local", tags, errors=(400, 422, 429)))
        return specs

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def models(self, request: web.Request) -> web.Response:
        context = request.get(TENANT)
        tier = context.tier.name if context is not None else ""
        body = {"object": "list", "data": [model.as_json() for model in self._browser.catalogue.models()],
                "policy": {"tier": tier, "server_fallback": self._browser.policy.allows(tier)},
                "runtime": {"client": CLIENT + "inferlab-browser.js", "wllama_wasm": CLIENT + "wllama.wasm"}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def model_file(self, request: web.Request) -> web.StreamResponse:
        model = self._browser.catalogue.by_file(request.match_info["file"])
        if model is None:
            raise NotFound("no such browser model file", code="model_not_found")
        return self._file(model.path, {**SHARED, "x-inferlab-sha256": model.sha256})

    async def playground(self, request: web.Request) -> web.StreamResponse:
        return self._file(self._browser.static_dir / "playground.html", {**ISOLATION, "Cache-Control": "no-cache"})

    async def client_file(self, request: web.Request) -> web.StreamResponse:
        directory = self._browser.client_dir
        path = directory / request.match_info["file"]
        if not path.is_file():
            if not directory.is_dir():
                raise ServiceUnavailable("the browser client is not built (./dev setup builds it: npm ci and "
                                         "npm run build in clients/browser)", code="browser_client_missing")
            raise NotFound("no such file of the browser client", code="not_found")
        return self._file(path, {**ISOLATION, **SHARED})

    async def usage(self, request: web.Request) -> web.Response:
        reports = self._browser.reports
        assert reports is not None  # the route exists only with them
        body = await read_json(request, USAGE_BODY_BYTES)
        recorded = await reports.record(self._caller_of(request), body)
        return web.Response(body=orjson.dumps(recorded.as_json()), content_type="application/json")

    def _file(self, path: Path, headers: dict[str, str]) -> web.FileResponse:
        max_age = self._browser.cache_max_age_s
        return web.FileResponse(path, headers={
            "Cache-Control": f"public, max-age={max_age}", **headers,
            "Content-Type": TYPES.get(path.suffix, "application/octet-stream")})
