"""OpenAI-compatible routes: chat, completions, embeddings, models."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.drain import DrainController
from inferlab.code.fim import FimTemplate, apply_fim
from inferlab.api.middleware import MODEL, REQUEST_ID, ROUTE, read_json
from inferlab.api.validation import RequestValidator
from inferlab.errors import InferLabError, ServiceUnavailable
from inferlab.metrics import GatewayMetrics
from inferlab.router import BackendPool, Failover, ModelRouter, OpenStream, Outcome, RoutingRequest, is_replica_fault
from inferlab.types import InferenceRequest, RequestKind, StreamChunk

@dataclass(frozen=True, slots=True)
class FimPolicy:
    """How a model honours ``suffix``: a template the gateway renders, or the engine's own support."""

    template: FimTemplate | None = None
    engine_handles_suffix: bool = False


SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"
SHUTDOWN_RETRY_AFTER_S = 5.0


def _session_key(request: web.Request, pool: BackendPool, body: dict[str, Any]) -> str | None:
    """The conversation a request belongs to, for session affinity: a header, else ``user``."""
    key = request.headers.get(pool.session_header)
    if key:
        return key
    user = body.get("user")
    return user if isinstance(user, str) and user else None


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
    ) -> None:
        self._router = router
        self._validator = validator
        self._drain = drain
        self._metrics = metrics
        self._log = logger
        self._max_body_bytes = max_body_bytes
        self._created = int(time.time())
        self._fim = fim or {}
        self._failover = Failover()

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/v1/models/{model_id:.+}", self.get_model)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.CHAT, "/v1/chat/completions")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.COMPLETION, "/v1/completions")

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._infer(request, RequestKind.EMBEDDING, "/v1/embeddings")

    async def list_models(self, request: web.Request) -> web.Response:
        data = [self._model_card(name) for name in self._router.names()]
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
        gauge = self._metrics.in_flight.labels(model) if self._metrics else None
        if gauge is not None:
            gauge.inc()
        try:
            if stream:
                return await self._stream(request, pool, routing, inference)
            return await self._whole(pool, routing, inference)
        finally:
            if gauge is not None:
                gauge.dec()

    def _fill_in_the_middle(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        policy = self._fim.get(model, FimPolicy())
        if policy.engine_handles_suffix and policy.template is None:
            return body
        return apply_fim(body, policy.template, model)

    async def _whole(self, pool: BackendPool, routing: RoutingRequest, inference: InferenceRequest) -> web.Response:
        embedding = inference.kind is RequestKind.EMBEDDING
        try:
            async with self._drain.track():
                result = await self._failover.run(
                    pool, routing,
                    (lambda backend: backend.embed(inference)) if embedding else (lambda backend: backend.complete(inference)),
                )
        except TimeoutError:
            raise ServiceUnavailable("The server shut down before the engine answered", retry_after=SHUTDOWN_RETRY_AFTER_S) from None
        if result.usage is not None and self._metrics is not None:
            self._metrics.observe_tokens(inference.model, result.usage.prompt_tokens, result.usage.completion_tokens)
        return web.Response(body=result.raw or orjson.dumps(result.body), content_type="application/json")

    async def _stream(
        self, request: web.Request, pool: BackendPool, routing: RoutingRequest, inference: InferenceRequest
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
                response = web.StreamResponse(headers={**SSE_HEADERS, "x-request-id": inference.request_id})
                await response.prepare(request)
                if opened.first is not None:
                    if self._metrics is not None:
                        self._metrics.ttft.labels(inference.model).observe(time.perf_counter() - started)
                    await self._forward(response, inference, opened.first)
                    async for chunk in opened.chunks:
                        await self._forward(response, inference, chunk)
                outcome = Outcome.SUCCESS
        except TimeoutError:
            if response is None:
                raise ServiceUnavailable("The server is shutting down", retry_after=SHUTDOWN_RETRY_AFTER_S) from None
            return await self._end_with_error(response, ServiceUnavailable("The server is shutting down"))
        except InferLabError as exc:
            if response is None:
                raise
            outcome = Outcome.FAILURE if is_replica_fault(exc) else Outcome.NEUTRAL
            return await self._end_with_error(response, exc)
        except ConnectionResetError:
            self._log.info("client went away mid-stream", extra={"request_id": inference.request_id})
            return response or web.StreamResponse()
        finally:
            if opened is not None:
                await opened.chunks.aclose()  # type: ignore[attr-defined]
                pool.release(opened.lease, outcome)
        await response.write(DONE)
        await response.write_eof()
        return response

    async def _forward(self, response: web.StreamResponse, inference: InferenceRequest, chunk: StreamChunk) -> None:
        if chunk.usage is not None:
            if self._metrics is not None:
                self._metrics.observe_tokens(inference.model, chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if not inference.include_usage:
                if not chunk.has_content:
                    return
                chunk.data.pop("usage", None)
        await response.write(b"data: " + chunk.encoded() + b"\n\n")

    async def _end_with_error(self, response: web.StreamResponse, exc: InferLabError) -> web.StreamResponse:
        self._log.warning("stream ended by error", extra={"error": exc.message, "status": exc.status})
        try:
            await response.write(sse_event(exc.to_payload()))
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response
