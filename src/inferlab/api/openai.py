"""OpenAI-compatible routes: chat, completions, embeddings, models.

The handler reads and validates the request, builds the HTTP-free ``Call``, runs the chain of
request steps (``inferlab.pipeline``) and renders what it gives back as JSON or SSE. Everything
else — limits, cache, routing, usage — is a step that owns its own clean-up; the handler only
says when the answer is complete, just before its last bytes (``Call.finish``), and how the call
ended (``Call.end``) once the client has the answer, or went away.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from inferlab.api import openai_schemas as schemas
from inferlab.api.body import read_body
from inferlab.api.middleware import CALL, MODEL, REQUEST_ID, ROUTE, TENANT, read_json
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.api.sse import (
    DONE,
    SSE_HEADERS,
    ChunkWriter,
    SseResponse,
    complete_now,
    prepares_without_waiting,
    sse_event,
)
from inferlab.api.validation import RequestValidator
from inferlab.auth.policy import INFERENCE, MODEL_IN_BODY, MODEL_IN_PATH
from inferlab.cache.keys import HEADER as CACHE_HEADER
from inferlab.drain import DrainController
from inferlab.errors import InferLabError, InvalidRequest, PermissionDenied, ServiceUnavailable
from inferlab.logs import PromptLog
from inferlab.pipeline import (
    DISCONNECT,
    SUCCESS,
    CacheMode,
    Call,
    Chain,
    ending_of,
    estimate_prompt_tokens,
)
from inferlab.pipeline.usage import UsageMeter
from inferlab.router import ModelRouter
from inferlab.types import BEHIND, FORWARDED, REFUSED, Caller, RequestKind, StreamChunk

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SHUTDOWN_RETRY_AFTER_S = 5.0
DEADLINE_HEADER = "x-inferlab-deadline-ms"  # the request must start within this many milliseconds
MAX_DEADLINE_MS = 86_400_000.0
CACHE_MODES: dict[str | None, CacheMode] = {None: "auto", "use": "use", "bypass": "bypass"}
FALLBACK_HEADER = "x-inferlab-fallback"  # a browser hybrid client's reason for sending this to the server
_FALLBACK_REASON = re.compile(r"^[a-z0-9_.-]{1,64}$")


def fallback_of(header: str | None) -> str | None:
    """``x-inferlab-fallback``: why a browser client sent the request to the server (a short token)."""
    if header is None:
        return None
    if not _FALLBACK_REASON.match(header):
        raise InvalidRequest(f"{FALLBACK_HEADER} must be a short reason: lower-case letters, digits, '_', '.', '-'",
                             code="invalid_fallback")
    return header


def deadline_of(header: str | None) -> float | None:
    """``x-inferlab-deadline-ms``: milliseconds from now by which the request must start (a positive
    number), as a ``time.monotonic()`` instant; 400 for anything else."""
    if header is None:
        return None
    try:
        milliseconds = float(header)
    except ValueError:
        milliseconds = math.nan
    if not 0 < milliseconds <= MAX_DEADLINE_MS:  # also refuses nan and inf
        raise InvalidRequest(f"{DEADLINE_HEADER} must be a number of milliseconds above 0 and at most "
                             f"{MAX_DEADLINE_MS:.0f}", code="invalid_deadline")
    return time.monotonic() + milliseconds / 1000


class _Forwarding:
    """A stream's ``ChunkSink`` once its head is out and nothing taps its events: plain chunks go
    to the client as the engine connection reads them, counted as ``OpenAIRoutes._event`` counts
    them. A call interrupted from outside, or a client gone, refuses the chunk: the stream's own
    loop then meets it and ends the call as it always does."""

    __slots__ = ("_call", "_writer")

    def __init__(self, call: Call, writer: ChunkWriter) -> None:
        self._call = call
        self._writer = writer

    def forward(self, framed: bytes, events: int) -> int:
        call = self._call
        if call.interrupted is not None:
            return REFUSED
        try:
            behind = self._writer.send(framed)
        except ConnectionResetError:  # nothing was written
            return REFUSED
        call.usage.chunks += events
        return BEHIND if behind else FORWARDED

    async def drained(self) -> None:
        await self._writer.drain()


def _sse_response(call: Call) -> SseResponse:
    return SseResponse(headers={**SSE_HEADERS, "x-request-id": call.request_id, **call.headers})


class _FirstRelay:
    """A stream's ``FirstSink``: its head and first event go to the client from the engine
    connection's callback, the moment the engine sends that event, instead of once the handler's
    task has run again and the chain has returned. Given only on routes whose every step passes
    streams through (``Chain.relays_first``), so nothing a step does after ``call_next`` could
    change what the client got. It hands what it sent to the call's taps, as the handler's loop
    does for every other event. The response it prepared, and the writer that sent the event, are
    the stream's from then on. A call interrupted from outside, or a client gone: it declines, and
    the handler sends the first event as it always does."""

    __slots__ = ("_call", "_log", "_request", "response", "sent", "writer")

    def __init__(self, request: web.Request, call: Call, logger: logging.Logger) -> None:
        self._request = request
        self._call = call
        self._log = logger
        self.response: SseResponse | None = None
        self.writer: ChunkWriter | None = None
        self.sent = False

    def first(self, framed: bytes) -> bool:
        call = self._call
        if self.response is not None or call.interrupted is not None or (
                call.client_gone is not None and call.client_gone()):
            return False
        try:
            response = _sse_response(call)
            complete_now(response.prepare(self._request))
        except Exception:  # noqa: BLE001 - never into the engine connection's callback: the handler prepares its own
            self._log.warning("could not relay a stream's first event", exc_info=True,
                              extra={"request_id": call.request_id})
            return False
        writer = ChunkWriter(self._request, response)
        self.response, self.writer = response, writer
        try:
            complete_now(writer.write(framed))
        except Exception:  # noqa: BLE001 - the handler's own write of these events meets it again (a client gone)
            return False
        self.sent = True
        call.first_byte_s = time.perf_counter() - call.started
        for tap in call.taps:
            try:
                tap(framed)
            except Exception:  # noqa: BLE001 - never into the engine connection's callback
                self._log.exception("a tap failed on a stream's first event", extra={"request_id": call.request_id})
        return True


def _relayed(relay: _FirstRelay | None) -> SseResponse | None:
    """The response a relay prepared: the stream is under way, an error ends it with an event."""
    return relay.response if relay is not None else None


class OpenAIRoutes:
    def __init__(
        self,
        chain: Chain,
        router: ModelRouter,
        validator: RequestValidator,
        drain: DrainController,
        caller_of: Callable[[web.Request], Caller],
        logger: logging.Logger,
        *,
        max_body_bytes: int,
        session_headers: Mapping[str, str] | None = None,
        prompts: PromptLog | None = None,
    ) -> None:
        self._chain = chain
        self._router = router
        self._validator = validator
        self._drain = drain
        self._caller_of = caller_of
        self._log = logger
        self._max_body_bytes = max_body_bytes
        self._session_headers = dict(session_headers or {})
        self._prompts = prompts
        self._created = int(time.time())

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

    # The inference routes' handlers are ``_infer`` itself, its kind and route bound: no coroutine
    # frame in between, which every chunk of a stream would pass through on its way back.
    @property
    def chat(self) -> Handler:
        return partial(self._infer, kind=RequestKind.CHAT, route="/v1/chat/completions")

    @property
    def completions(self) -> Handler:
        return partial(self._infer, kind=RequestKind.COMPLETION, route="/v1/completions")

    @property
    def embeddings(self) -> Handler:
        return partial(self._infer, kind=RequestKind.EMBEDDING, route="/v1/embeddings")

    async def list_models(self, request: web.Request) -> web.Response:
        """The models the caller's key and tier allow."""
        caller = self._caller_of(request)
        tenant = request.get(TENANT)
        data = [self._model_card(name) for name in self._router.names()
                if caller.may_use(name) and (tenant is None or tenant.tier.allows_model(name))]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")

    async def get_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model_id"]
        self._router.pool(name)
        tenant = request.get(TENANT)
        if tenant is not None and not tenant.tier.allows_model(name):  # as the tier step answers
            raise PermissionDenied(f"The {tenant.tier.name} tier does not include the model '{name}'",
                                   code="model_not_in_tier", param="model")
        return web.Response(body=orjson.dumps(self._model_card(name)), content_type="application/json")

    def _model_card(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": "inferlab"}

    # -- the request path -------------------------------------------------------------------------

    async def _call(self, request: web.Request, kind: RequestKind, route: str, body: dict[str, Any]) -> Call:
        model: str = body["model"]
        stream = kind is not RequestKind.EMBEDDING and body.get("stream") is True
        body_bytes = len(await read_body(request))  # read once already: the inflated size, not the wire's
        protocol = request.protocol  # not the request, which holds the call: no reference cycle through it
        return Call(
            request_id=request[REQUEST_ID], kind=kind, route=route, model=model, body=body,
            caller=self._caller_of(request), stream=stream,
            include_usage=stream and bool((body.get("stream_options") or {}).get("include_usage")),
            cache_mode=CACHE_MODES.get(request.headers.get(CACHE_HEADER), "auto"),
            session_key=self._session_key(request, model, body),
            usage=UsageMeter(estimate_prompt_tokens(body_bytes)),
            deadline=deadline_of(request.headers.get(DEADLINE_HEADER)),
            fallback=fallback_of(request.headers.get(FALLBACK_HEADER)),
            client_gone=lambda: protocol.transport is None or protocol.transport.is_closing(),
        )

    def _session_key(self, request: web.Request, model: str, body: dict[str, Any]) -> str | None:
        """The conversation a request belongs to, for session affinity: a header, else ``user``."""
        header = self._session_headers.get(model)
        key = request.headers.get(header) if header else None
        if key:
            return key
        user = body.get("user")
        return user if isinstance(user, str) and user else None

    async def _infer(self, request: web.Request, *, kind: RequestKind, route: str) -> web.StreamResponse:
        body = self._validator.validate(kind, await read_json(request, self._max_body_bytes))
        request[MODEL], request[ROUTE] = body["model"], route
        if self._prompts is not None:
            self._prompts.record(request[REQUEST_ID], body["model"], body)
        return await self.run(request, await self._call(request, kind, route, body))

    def run(self, request: web.Request, call: Call) -> Coroutine[Any, Any, web.StreamResponse]:
        """Run a built call through the chain and render its reply: the one way every inference
        route (the OpenAI ones, and CodeLab's translations onto them) reaches the engines. Awaited
        by the caller: the rendering coroutine itself, not a frame around it."""
        if self._drain.draining:
            raise ServiceUnavailable("The server is shutting down", retry_after=SHUTDOWN_RETRY_AFTER_S)
        request[CALL] = call
        return self._stream(request, call) if call.stream else self._whole(request, call)

    async def _whole(self, request: web.Request, call: Call) -> web.StreamResponse:
        try:
            with self._drain.track():
                reply = await self._chain(call)
        except TimeoutError:
            raise ServiceUnavailable(
                "The server shut down before the engine answered", retry_after=SHUTDOWN_RETRY_AFTER_S
            ) from None
        if call.interrupted is not None:
            await call.end(ending_of(call.interrupted))
            raise call.interrupted
        await call.finish()
        body = reply.replay if reply.replay is not None else reply.response.encoded()  # type: ignore[union-attr]
        response = web.Response(body=body, content_type="application/json", headers=call.headers or None)
        await call.end(SUCCESS)
        return response

    async def _stream(self, request: web.Request, call: Call) -> web.StreamResponse:
        """Forward chunks as they arrive. Failures before the first chunk (after failover) are
        plain JSON errors; after it, one SSE error event ends the stream. The head and first event
        may go to the client from the engine connection's callback (``_FirstRelay``), and the plain
        chunks after them as the connection reads them (``_Forwarding``); ``[DONE]`` goes out with the end of the body,
        after the call's clean-ups and the middleware (``SseResponse``)."""
        response: SseResponse | None = None
        relay: _FirstRelay | None = None
        if self._chain.relays_first(call.route) and prepares_without_waiting(request):
            relay = call.first_sink = _FirstRelay(request, call, self._log)
        try:
            with self._drain.track():
                reply = await self._chain(call)
                writer = None
                if relay is not None and relay.response is not None:  # the first event went out as it came
                    response, writer = relay.response, relay.writer
                else:
                    response = _sse_response(call)
                    await response.prepare(request)
                if reply.replay is not None:
                    await call.finish()
                    await response.write(reply.replay)
                    await response.write_eof()
                else:
                    # the one per-chunk loop, here in the handler's own frame
                    assert reply.chunks is not None
                    if writer is None:
                        writer = ChunkWriter(request, response)
                    first = reply.first
                    if first is not None:
                        if relay is not None and relay.sent:  # already sent, and tapped
                            call.usage.chunks += first.events
                        else:
                            event = self._event(call, first)
                            if event is not None:
                                await writer.write(event)
                        chunks = reply.chunks
                        if writer.direct and not call.taps:  # nothing to see per chunk: plain ones may skip this loop
                            forward_to = getattr(chunks, "forward_to", None)
                            if forward_to is not None:
                                forward_to(_Forwarding(call, writer))
                        async for chunk in chunks:
                            event = self._event(call, chunk)
                            if event is None:
                                continue
                            if writer.direct:  # no coroutine per event once the head is out
                                if writer.send(event):
                                    await writer.drain()
                            else:
                                await writer.write(event)
                    await call.finish()
                    for tap in call.taps:
                        tap(DONE)
                    response.end_with(DONE)  # it goes out with the end of the body, once the call is settled
        except TimeoutError:
            response = response or _relayed(relay)
            if response is None:
                raise ServiceUnavailable("The server is shutting down", retry_after=SHUTDOWN_RETRY_AFTER_S) from None
            return await self._end_with_error(response, call, ServiceUnavailable("The server is shutting down"))
        except InferLabError as exc:
            response = response or _relayed(relay)
            if response is None:
                raise  # the chain already ended the call
            return await self._end_with_error(response, call, exc)
        except (ConnectionResetError, ConnectionAbortedError):
            self._log.info("client went away mid-stream", extra={"request_id": call.request_id})
            await call.end(DISCONNECT)
            return response or _relayed(relay) or web.StreamResponse()
        except Exception:
            response = response or _relayed(relay)
            if response is None:
                raise  # the chain already ended the call
            self._log.exception("stream failed", extra={"request_id": call.request_id})
            return await self._end_with_error(response, call, InferLabError("The server had an error while streaming"))
        except BaseException as exc:
            await call.end(ending_of(exc))
            raise
        await call.end(SUCCESS)
        return response

    @staticmethod
    def _event(call: Call, chunk: StreamChunk) -> bytes | None:
        """A chunk's bytes for the client, its usage counted and tapped; None: nothing to send (a
        usage-only chunk the client did not ask for)."""
        if call.interrupted is not None:
            raise call.interrupted
        usage = call.usage
        usage.chunks += chunk.events
        if chunk.framed is not None and not call.taps:  # plain chunks forwarded as the engine framed them
            return chunk.framed
        if chunk.usage is not None:
            usage.engine_reported(chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.cached_tokens)
            if not call.include_usage:
                if not chunk.has_content:
                    return None
                chunk.data.pop("usage", None)
        event = chunk.event()
        for tap in call.taps:
            tap(event)
        return event

    async def _end_with_error(self, response: SseResponse, call: Call, exc: InferLabError) -> web.StreamResponse:
        self._log.warning("stream ended by error", extra={"error": exc.message, "status": exc.status,
                                                          "request_id": call.request_id})
        await call.end(ending_of(exc))
        response.end_with(b"")  # a stream that ends with an error has no [DONE]
        try:
            await response.write(sse_event(exc.to_payload()))
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response
