"""The one middleware: request id, InferLab errors → OpenAI-shaped JSON, metrics, access log."""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from inferlab.api.auth import PRINCIPAL
from inferlab.api.body import NOT_INVITED, read_body, too_large
from inferlab.api.http_server import SERVER
from inferlab.cache.keys import HEADER as CACHE_HEADER
from inferlab.errors import InferLabError, InvalidRequest, NotFound, PayloadTooLarge
from inferlab.logs import LineLog
from inferlab.metrics import GatewayMetrics
from inferlab.pipeline import Call
from inferlab.tenants.directory import TenantContext
from inferlab.tenants.tier import TIER_HEADER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)
MODEL = web.RequestKey("model", str)
ROUTE = web.RequestKey("route", str)
CALL = web.RequestKey("call", Call)  # the inference call: what the access log reports of it
TENANT = web.RequestKey("tenant", TenantContext)  # the caller's tenant (api/tenancy): its tier is on every answer
OTHER_ROUTE = "other"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def error_response(exc: InferLabError, request_id: str | None = None) -> web.Response:
    headers = exc.headers()
    headers["Server"] = SERVER
    if request_id:
        headers["x-request-id"] = request_id
    return web.Response(
        status=exc.status, body=orjson.dumps(exc.to_payload()), content_type="application/json", headers=headers
    )


def from_http_exception(exc: web.HTTPException) -> InferLabError:
    """aiohttp's own refusals (no such route, wrong method, body too large) in InferLab's terms."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("The request body is larger than this server accepts")
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("No such route")
    error = InferLabError(exc.reason or "HTTP error", code=exc.reason.lower().replace(" ", "_") if exc.reason else None)
    error.status = exc.status
    error.error_type = "invalid_request_error" if 400 <= exc.status < 500 else "internal_error"
    return error


def route_label(request: web.Request) -> str:
    """The matched route's template, never the raw path: a bounded metrics label."""
    match_info = request.match_info
    resource = match_info.route.resource if match_info.http_exception is None else None
    return resource.canonical if resource is not None else OTHER_ROUTE


def access_fields(request: web.Request, response: web.StreamResponse) -> dict[str, object]:
    """Who asked (never the credential), what it cost, whether the cache answered, where it went."""
    fields: dict[str, object] = {}
    principal = request.get(PRINCIPAL)
    if principal is not None:
        fields.update(key_id=principal.key_id, user=principal.user_id, tenant=principal.tenant_id)
    cache = response.headers.get(CACHE_HEADER)
    if cache is not None:
        fields["cache"] = cache
    call = request.get(CALL)
    if call is None:
        return fields
    if call.usage.known is not None:
        fields.update(prompt_tokens=call.usage.known[0], completion_tokens=call.usage.known[1])
    replicas = call.replicas
    if replicas:
        fields.update(replica=replicas[-1], failovers=len(replicas) - 1)
    return fields


class RequestIds:
    """Unique ids without a uuid4 per request: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)

    def of(self, request: web.Request) -> str:
        incoming = request.headers.get("x-request-id")
        if incoming and _REQUEST_ID.match(incoming):
            return incoming
        return f"{self._prefix}{next(self._counter):08x}"


def build_middleware(metrics: GatewayMetrics | None, logger: logging.Logger) -> Callable[..., Awaitable[web.StreamResponse]]:
    access = LineLog(logger.getChild("access"), "request")
    ids = RequestIds()

    @web.middleware
    async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = ids.of(request)
        request[REQUEST_ID] = request_id
        started = time.perf_counter()
        try:
            not_invited = request.get(NOT_INVITED)
            if not_invited is not None:  # Expect: 100-continue, too large: refused before a handler waits for it
                raise too_large(not_invited)
            response = await handler(request)
        except InferLabError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(from_http_exception(exc))
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id, "path": request.path})
            response = error_response(InferLabError("The server had an error while processing your request"))
        if not response.prepared:
            response.headers["x-request-id"] = request_id
            response.headers["Server"] = SERVER
            tenant = request.get(TENANT)
            if tenant is not None:
                response.headers[TIER_HEADER] = tenant.tier.name
        elapsed = time.perf_counter() - started
        model = request.get(MODEL, "")
        if metrics is not None:
            metrics.observe_request(model, route_label(request), response.status, elapsed)
        if request.path not in _QUIET_PATHS:
            # written after this loop turn, once the response is on its way (a whole response is sent
            # after this returns)
            access.write({
                "request_id": request_id, "method": request.method, "path": request.path,
                "status": response.status, "ms": round(elapsed * 1000, 2), "model": model,
                **access_fields(request, response),
            })
        return response

    return gateway_middleware


async def read_json(request: web.Request, limit: int) -> object:
    raw = await read_body(request, limit)
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object", code="invalid_body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON", code="invalid_json") from None
