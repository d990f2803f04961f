"""OpenAI-compatible routes: chat, completions, embeddings, models."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from inferlab.api import openai_schemas as schemas
from inferlab.api.drain import DrainController
from inferlab.cache.protocol import CachedResponse
from inferlab.cache.responses import ResponseCache
from inferlab.code.fim import FimTemplate, apply_fim
from inferlab.api.middleware import MODEL, REQUEST_ID, ROUTE, read_json
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.api.validation import RequestValidator
from inferlab.auth.middleware import PRINCIPAL
from inferlab.auth.policy import INFERENCE, MODEL_IN_BODY, MODEL_IN_PATH
from inferlab.errors import InferLabError, ServiceUnavailable
from inferlab.metrics import GatewayMetrics
from inferlab.ratelimit.admission import Admission, Ticket
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import Overrides
from inferlab.router import BackendPool, Failover, ModelRouter, OpenStream, Outcome, RoutingRequest, is_replica_fault
from inferlab.types import InferenceRequest, RequestKind, StreamChunk

@dataclass(frozen=True, slots=True)
class FimPolicy:
    """How a model honours ``suffix``: a template the gateway renders, or the engine's own support."""

    template: FimTemplate | None = None
    engine_handles_suffix: bool = False


SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"
CACHE_HEADER = "x-inferlab-cache"
SHUTDOWN_RETRY_AFTER_S = 5.0


def _session_key(request: web.Request, pool: BackendPool, body: dict[str, Any]) -> str | None:
    """The conversation a request belongs to, for session affinity: a header, else ``user``."""
    key = request.headers.get(pool.session_header)
    if key:
        return key
    user = body.get("user")
    return user if isinstance(user, str) and user else None


def reserved_tokens(
    request: web.Request, body: dict[str, Any], kind: RequestKind, default_max_tokens: int
) -> tuple[int, int]:
    """(prompt, completion) reserved at admission: the prompt estimated from the body size (~4 bytes
    a token) and every completion token the request may ask for. Reconciled with the real usage."""
    prompt = (request.content_length or 0) // 4 + 1
    if kind is RequestKind.EMBEDDING:
        return prompt, 0
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    n = body.get("n") or 1
    return prompt, int(completion) * int(n)


@dataclass(frozen=True, slots=True)
class Limits:
    """features.ratelimit: the admission step and who a request counts against."""

    admission: Admission
    identify: Callable[[web.Request], Identity]
    default_max_tokens: int
    overrides: Callable[[Identity], Awaitable[Mapping[str, Overrides]]] | None = None  # stored per-subject limits


def sse_event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class OpenAIRoutes:
    def __init__(
        self,
        router: ModelRouter,
        validator: RequestValidator,
        drain: DrainController,
        metrics: GatewayMetrics | None,
        logger: logging.Logger,
        max_body_bytes: int,
        fim: dict[str, FimPolicy] | None = None,
        limits: Limits | None = None,
        cache: ResponseCache | None = None,
        *,
        failover: Failover,
    ) -> None:
        self._router = router
        self._validator = validator
        self._drain = drain
        self._metrics = metrics
        self._log = logger
        self._max_body_bytes = max_body_bytes
        self._created = int(time.time())
        self._fim = fim or {}
        self._failover = failover
        self._limits = limits
        self._cache = cache

    def routes(self) -> list[RouteSpec]:
        errors = (400, 404, 429, 502, 503, 504)
        return [
            RouteSpec("POST", "/v1/chat/completions", self.chat, MODEL_IN_BODY, "Create a chat completion",
                      ("inference",), schemas.CHAT_REQUEST, schemas.CHAT_COMPLETION, errors=errors, streams=True),
            RouteSpec("POST", "/v1/completions", self.completions, MODEL_IN_BODY,
                      "Create a text completion (fill-in-the-middle with `suffix`)",
                      ("inference",), schemas.COMPLETION_REQUEST, schemas.COMPLETION, errors=errors, streams=True),
            RouteSpec("POST", "/v1/embeddings", self.embeddings, MODEL_IN_BODY, "Create embeddings",
                      ("inference",), schemas.EMBEDDING_REQUEST, schemas.EMBEDDINGS, errors=errors),
            RouteSpec("GET", "/v1/models", self.list_models, INFERENCE,
                      "List the models (a model-scoped key: its own)", ("models",), response=schemas.MODEL_LIST),
            RouteSpec("GET", "/v1/models/{model_id:.+}", self.get_model, MODEL_IN_PATH, "Show a model",
                      ("models",), response=schemas.MODEL, errors=(404,)),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.CHAT, "/v1/chat/completions")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.COMPLETION, "/v1/completions")

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.EMBEDDING, "/v1/embeddings")

    async def list_models(self, request: web.Request) -> web.Response:
        principal = request.get(PRINCIPAL)  # auth on: a model-scoped key sees only its models
        names = self._router.names()
        if principal is not None:
            names = [name for name in names if principal.scopes.allows_model(name)]
        data = [self._model_card(name) for name in names]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")

    async def get_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model_id"]
        self._router.pool(name)
        return web.Response(body=orjson.dumps(self._model_card(name)), content_type="application/json")

    def _model_card(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": "inferlab"}

    async def _infer(self, request: web.Request, kind: RequestKind, route: str) -> web.StreamResponse:
        body = self._validator.validate(kind, await read_json(request, self._max_body_bytes))
        model: str = body["model"]
        pool = self._router.pool(model, kind)
        request[MODEL], request[ROUTE] = model, route
        if kind is RequestKind.COMPLETION and body.get("suffix") is not None:
            body = self._fill_in_the_middle(model, body)
        if self._drain.draining:
            raise ServiceUnavailable("The server is shutting down", retry_after=SHUTDOWN_RETRY_AFTER_S)
        stream = kind is not RequestKind.EMBEDDING and body.get("stream") is True
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        inference = InferenceRequest(kind, model, body, request[REQUEST_ID], stream, include_usage)
        routing = RoutingRequest(body, _session_key(request, pool, body), request.get("priority", 0) or 0)
        ticket: Ticket | None = None
        if self._limits is not None:
            limits = self._limits
            prompt, completion = reserved_tokens(request, body, kind, limits.default_max_tokens)
            who = limits.identify(request)
            stored = await limits.overrides(who) if limits.overrides is not None else None
            ticket = await limits.admission.admit(who, model, prompt, completion, stored)
        gauge = self._metrics.in_flight.labels(model) if self._metrics else None
        if gauge is not None:
            gauge.inc()
        usage = _Used(ticket)
        try:
            if self._cache is not None:
                usage.cache_key = self._cache.key(request, route, body)
                if usage.cache_key is not None:
                    hit = await self._cache.get(usage.cache_key)
                    if hit is not None:
                        usage.nothing()  # no engine work: nothing to charge beyond the request itself
                        return await self._replay(request, hit, inference, ticket)
                    usage.recording = [] if stream else None
            if stream:
                return await self._stream(request, pool, routing, inference, ticket, usage)
            return await self._whole(pool, routing, inference, ticket, usage)
        finally:
            if gauge is not None:
                gauge.dec()
            if ticket is not None and self._limits is not None:
                await self._limits.admission.finish(ticket, usage.settled())

    def _fill_in_the_middle(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        policy = self._fim.get(model, FimPolicy())
        if policy.engine_handles_suffix and policy.template is None:
            return body
        return apply_fim(body, policy.template, model)

    async def _whole(
        self, pool: BackendPool, routing: RoutingRequest, inference: InferenceRequest, ticket: Ticket | None,
        used: "_Used",
    ) -> web.Response:
        embedding = inference.kind is RequestKind.EMBEDDING
        try:
            async with self._drain.track():
                result = await self._failover.run(
                    pool, routing,
                    (lambda backend: backend.embed(inference)) if embedding else (lambda backend: backend.complete(inference)),
                )
        except TimeoutError:
            raise ServiceUnavailable("The server shut down before the engine answered", retry_after=SHUTDOWN_RETRY_AFTER_S) from None
        except InferLabError:
            used.nothing()  # refused or failed before the engine produced anything
            raise
        except asyncio.CancelledError:
            used.cut_short()  # the client left: aiohttp cancels the handler, closing the engine's request
            raise
        if result.usage is not None:
            used.known = (result.usage.prompt_tokens, result.usage.completion_tokens)
            if self._metrics is not None:
                self._metrics.observe_tokens(inference.model, result.usage.prompt_tokens, result.usage.completion_tokens)
        body = result.raw or orjson.dumps(result.body)
        headers = dict(ticket.headers) if ticket is not None else {}
        if used.cache_key is not None and self._cache is not None:
            headers[CACHE_HEADER] = "miss"
            await self._cache.put(used.cache_key, CachedResponse("json", body))
        return web.Response(body=body, content_type="application/json", headers=headers or None)

    async def _replay(
        self, request: web.Request, hit: CachedResponse, inference: InferenceRequest, ticket: Ticket | None
    ) -> web.StreamResponse:
        headers = {CACHE_HEADER: "hit", **(ticket.headers if ticket is not None else {})}
        if hit.kind == "json":
            return web.Response(body=hit.body, content_type="application/json", headers=headers)
        response = web.StreamResponse(headers={**SSE_HEADERS, "x-request-id": inference.request_id, **headers})
        await response.prepare(request)
        await response.write(hit.body)
        await response.write_eof()
        return response

    async def _stream(
        self, request: web.Request, pool: BackendPool, routing: RoutingRequest, inference: InferenceRequest,
        ticket: Ticket | None, used: "_Used",
    ) -> web.StreamResponse:
        """Forward chunks as they arrive. Failures before the first chunk fail over to another
        replica (``Failover.open_stream``), then are plain JSON errors; after it, one SSE error
        event ends the stream."""
        started = time.perf_counter()
        opened: OpenStream | None = None
        response: web.StreamResponse | None = None
        outcome = Outcome.NEUTRAL
        try:
            async with self._drain.track():
                opened = await self._failover.open_stream(pool, routing, inference)
                headers = {**SSE_HEADERS, "x-request-id": inference.request_id}
                if ticket is not None:
                    headers.update(ticket.headers)
                if used.recording is not None:
                    headers[CACHE_HEADER] = "miss"
                response = web.StreamResponse(headers=headers)
                await response.prepare(request)
                if opened.first is not None:
                    if self._metrics is not None:
                        self._metrics.ttft.labels(inference.model).observe(time.perf_counter() - started)
                    await self._forward(response, inference, opened.first, used)
                    async for chunk in opened.chunks:
                        await self._forward(response, inference, chunk, used)
                outcome = Outcome.SUCCESS
        except TimeoutError:
            if response is None:
                raise ServiceUnavailable("The server is shutting down", retry_after=SHUTDOWN_RETRY_AFTER_S) from None
            return await self._end_with_error(response, ServiceUnavailable("The server is shutting down"))
        except InferLabError as exc:
            if response is None:
                used.nothing()  # nothing was generated
                raise
            outcome = Outcome.FAILURE if is_replica_fault(exc) else Outcome.NEUTRAL
            return await self._end_with_error(response, exc)
        except ConnectionResetError:
            self._log.info("client went away mid-stream", extra={"request_id": inference.request_id})
            return response or web.StreamResponse()
        except asyncio.CancelledError:
            used.cut_short()  # the client left: aiohttp cancels the handler, closing the engine's stream
            raise
        except Exception:
            if response is None:
                raise
            self._log.exception("stream failed", extra={"request_id": inference.request_id})
            failure = InferLabError("The server had an error while streaming")
            return await self._end_with_error(response, failure)
        finally:
            if opened is not None:
                await opened.chunks.aclose()  # type: ignore[attr-defined]
                pool.release(opened.lease, outcome)
        await response.write(DONE)
        await response.write_eof()
        if used.recording is not None and used.cache_key is not None and self._cache is not None:
            used.recording.append(DONE)
            await self._cache.put(used.cache_key, CachedResponse("sse", b"".join(used.recording)))
        return response

    async def _forward(
        self, response: web.StreamResponse, inference: InferenceRequest, chunk: StreamChunk, used: "_Used"
    ) -> None:
        if used.counting:
            used.chunks += 1
        if chunk.usage is not None:
            used.known = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if self._metrics is not None:
                self._metrics.observe_tokens(inference.model, chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if not inference.include_usage:
                if not chunk.has_content:
                    return
                chunk.data.pop("usage", None)
        event = b"data: " + chunk.encoded() + b"\n\n"
        if used.recording is not None:
            used.recording.append(event)
        await response.write(event)

    async def _end_with_error(self, response: web.StreamResponse, exc: InferLabError) -> web.StreamResponse:
        self._log.warning("stream ended by error", extra={"error": exc.message, "status": exc.status})
        try:
            await response.write(sse_event(exc.to_payload()))
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response


class _Used:
    """What a request really used, for settling its ticket: the engine's usage when it came; for a
    stream cut short before it, the reserved prompt plus one token per chunk forwarded; for a
    request that failed before the engine produced anything, nothing. A request whose client left
    before the answer ended (``cut_short``) is charged its reserved prompt plus one token per chunk
    forwarded, even before the first byte or in a non-streamed request: the engine may have done
    the prefill, the gateway cannot know, and leaving early must not make prefill free."""

    __slots__ = ("cache_key", "chunks", "counting", "known", "prompt", "recording")

    def __init__(self, ticket: Ticket | None) -> None:
        self.cache_key: str | None = None  # a cacheable request: stored after a complete success
        self.recording: list[bytes] | None = None  # a cacheable stream: every SSE byte sent
        self.counting = ticket is not None
        self.prompt = ticket.prompt if ticket is not None else 0
        self.known: tuple[int, int] | None = None
        self.chunks = 0

    def nothing(self) -> None:
        self.known = (0, 0)

    def cut_short(self) -> None:
        if self.known is None:
            self.known = (self.prompt, self.chunks)

    def settled(self) -> tuple[int, int]:
        if self.known is not None:
            return self.known
        return (self.prompt, self.chunks) if self.chunks else (0, 0)
