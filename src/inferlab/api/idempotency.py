"""The ``Idempotency-Key`` middleware: a write repeated with the same key runs once (Stripe's rules).

It runs inside the auth and tenancy middlewares (it needs the caller's ``Principal``: keys are
scoped to it) and only on the routes ``idempotent_routes`` picks: the admin and customer POST, PUT,
PATCH and DELETE routes. Inference (chat, completions, embeddings, responses, code, tokenize, the
planning calculators), the dashboards (their forms carry a CSRF token) and public routes are out.

A first request claims the key and runs; its response (status, ``STORED_HEADERS``, body) is kept
for ``idempotency.ttl_s``. Not kept, the key released for a retry: a 5xx, 408, 429, a streamed
or oversized response, a handler that raised something unexpected. A repeat answers the kept
response with ``idempotent-replayed: true``; a repeat whose method, path or body differ 422
``idempotency_key_reused``; one while the first still runs 409 ``idempotency_key_in_use`` with
``Retry-After: 1``. A malformed key (over 255 characters, a control character) is 400.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from aiohttp import web

from inferlab.api.auth import PRINCIPAL, canonical_route
from inferlab.api.body import read_body
from inferlab.api.middleware import error_response, from_http_exception
from inferlab.api.routes import RouteSpec
from inferlab.errors import InferLabError, InvalidRequest
from inferlab.idempotency.protocol import (
    Conflicting,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InUse,
    Replay,
    StoredResponse,
)
from inferlab.idempotency.service import Idempotency, fingerprint, scope_of, valid_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER = "Idempotency-Key"
REPLAYED = "idempotent-replayed"
STORED_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_KEPT = frozenset({408, 429})
_INFERENCE_PREFIXES = ("/v1/code/",)
_UPLOADS = frozenset({("POST", "/v1/files")})  # multipart, up to batches.max_file_bytes: not hashed in memory


def idempotent_routes(declared: Iterable[RouteSpec]) -> frozenset[tuple[str, str]]:
    """(method, canonical path) of every write the middleware applies to."""
    return frozenset(
        (spec.method, spec.canonical) for spec in declared
        if spec.method in WRITES and spec.access.group != "public" and not spec.access.session
        and spec.access.model_in is None and not spec.streams and "planning" not in spec.tags
        and not spec.canonical.startswith(_INFERENCE_PREFIXES) and (spec.method, spec.canonical) not in _UPLOADS
    )


def storable(response: web.StreamResponse, max_bytes: int) -> StoredResponse | None:
    """What of an answer is kept for replays; None: nothing (the key is released)."""
    if response.status >= 500 or response.status in NOT_KEPT or response.prepared:
        return None
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes | bytearray):
        return None
    if len(response.body) > max_bytes:
        return None
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    return StoredResponse(response.status, headers, bytes(response.body))


def _replay(stored: StoredResponse) -> web.Response:
    return web.Response(status=stored.status, body=stored.body, headers={**stored.headers, REPLAYED: "true"})


def build_idempotency_middleware(idempotency: Idempotency, routes: frozenset[tuple[str, str]],
                                 logger: logging.Logger) -> Callable[..., Awaitable[web.StreamResponse]]:
    max_bytes = idempotency.settings.max_response_bytes

    async def settle(scope: str, key: str, claimed_at: datetime, kept: StoredResponse | None, path: str) -> None:
        """Keep the answer, or release the key (``kept`` None). A store failure is logged, never
        raised: the answer (or the handler's own error) still goes out; the key waits out its lock."""
        try:
            if kept is None:
                await idempotency.release(scope, key, claimed_at)
            else:
                await idempotency.complete(scope, key, kept)
        except Exception:
            logger.warning("an idempotency key could not be recorded", extra={"path": path}, exc_info=True)

    @web.middleware
    def idempotency_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        """A request without a key, or on a route keys do not apply to, is the handler's own
        coroutine, returned as it is: no frame of this middleware around it (aiohttp awaits what a
        middleware returns), so an inference stream's every chunk does not pass through here."""
        key = request.headers.get(HEADER)
        if key is None or request.method not in WRITES:
            return handler(request)
        route = canonical_route(request)
        if route is None or (request.method, route) not in routes:
            return handler(request)
        return idempotent(request, handler, key)

    async def idempotent(request: web.Request, handler: Handler, key: str) -> web.StreamResponse:
        if not valid_key(key):
            raise InvalidRequest("The Idempotency-Key header must be 1 to 255 characters without control "
                                 "characters", param=HEADER, code="invalid_idempotency_key")
        scope = scope_of(request.get(PRINCIPAL))
        body = await read_body(request)  # kept on the request: the handler reads it again for free
        begun = await idempotency.begin(scope, key, fingerprint(request.method, request.path_qs, body))
        if isinstance(begun, Replay):
            return _replay(begun.response)
        if isinstance(begun, InUse):
            raise IdempotencyKeyInUse("A request with this Idempotency-Key is still being processed: retry "
                                      "once it has finished", param=HEADER, retry_after=1)
        if isinstance(begun, Conflicting):
            raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request (method, "
                                       "path or body): use a new key for a new request", param=HEADER)
        claimed_at = begun.at or datetime.now(UTC)
        try:
            response = await handler(request)
        except InferLabError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                await asyncio.shield(settle(scope, key, claimed_at, None, request.path))
                raise
            response = error_response(from_http_exception(exc))
        except BaseException:
            await asyncio.shield(settle(scope, key, claimed_at, None, request.path))
            raise
        await settle(scope, key, claimed_at, storable(response, max_bytes), request.path)
        return response

    return idempotency_middleware
