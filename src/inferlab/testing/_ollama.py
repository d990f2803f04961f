"""The simulator's Ollama front end: Ollama's native API, as its users call it.

Routes: ``POST /api/chat``, ``POST /api/generate``, ``POST /api/embed``, ``GET /api/tags`` and
``GET /api/version``. Streaming is on unless ``"stream": false``, as in Ollama: one JSON object
per line (NDJSON), ``done: false`` per token, then a final object with ``done: true``,
``done_reason`` and the counters (``prompt_eval_count``, ``eval_count``, durations in ns).
Errors are ``{"error": "..."}``. Requests are checked as Ollama parses them (string ``content``,
base64 ``images``, ``format``, ``tools``...) and the last one received is kept in
``SimulatorState.last_request``; tool calls, ``format``, ``logprobs`` and ``think`` shape the reply
as described in ``_ollama_native``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from inferlab.testing._faults import ENDS_STREAM, NDJSON_FAULTS, ndjson_fault
from inferlab.testing._ollama_native import NativeRequestError, ReplyShape, check_messages, check_options
from inferlab.testing._state import RequestPlan, SimulatorState
from inferlab.testing._text import count_message_words, count_words, embedding_inputs, embedding_vector

SIMULATED_OLLAMA_VERSION = "0.0.0-simulator"
_NDJSON_TYPE = "application/x-ndjson"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ollama_error(status: int, message: str, retry_after_s: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.Response(
        status=status, body=orjson.dumps({"error": message}), content_type="application/json", headers=headers
    )


def _truncated(vector: list[float], dimensions: Any) -> list[float]:
    """Ollama's ``dimensions``: the first N values, normalised again."""
    if not isinstance(dimensions, int) or not 0 < dimensions < len(vector):
        return vector
    head = vector[:dimensions]
    norm = sum(x * x for x in head) ** 0.5 or 1.0
    return [x / norm for x in head]


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class _Generation:
    chat: bool
    model: str
    stream: bool
    max_tokens: int | None
    prompt_tokens: int
    shape: ReplyShape


class OllamaFrontEnd:
    """Request handlers for Ollama's native API over one ``SimulatorState``."""

    def __init__(self, state: SimulatorState, model: str) -> None:
        self._state = state
        self._model = model.removesuffix(":latest")
        self._modified_at = _now_rfc3339()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/chat", self.chat),
            web.post("/api/generate", self.generate),
            web.post("/api/embed", self.embed),
            web.get("/api/tags", self.tags),
            web.get("/api/version", self.version),
        ]

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise _BadRequest(400, f"invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest(400, "request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _BadRequest(400, "model is required")
        if model.removesuffix(":latest") != self._model:
            raise _BadRequest(404, f'model "{model}" not found, try pulling it first')
        self._state.last_request = body
        return body

    @staticmethod
    def _generation(body: dict[str, Any], *, chat: bool, prompt_tokens: int) -> _Generation:
        options = body.get("options") or {}
        num_predict = options.get("num_predict") if isinstance(options, dict) else None
        if num_predict is not None and not isinstance(num_predict, int):
            raise _BadRequest(400, "options.num_predict must be an integer")
        max_tokens = num_predict if num_predict is not None and num_predict >= 0 else None
        stream = body.get("stream", True)
        if not isinstance(stream, bool):
            raise _BadRequest(400, "stream must be a boolean")
        try:
            if chat:
                check_messages(body.get("messages") or [])
            check_options(body, chat=chat)
        except NativeRequestError as exc:
            raise _BadRequest(400, str(exc)) from None
        return _Generation(chat, body["model"], stream, max_tokens, prompt_tokens, ReplyShape.of(body, chat=chat))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
            messages = body.get("messages") or []
            if not isinstance(messages, list):
                raise _BadRequest(400, "messages must be a list")
            gen = self._generation(body, chat=True, prompt_tokens=count_message_words(messages))
        except _BadRequest as exc:
            return ollama_error(exc.status, exc.message)
        if not messages:
            return self._loaded(gen)
        return await self._generate(request, gen)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
            prompt = body.get("prompt") or ""
            if not isinstance(prompt, str):
                raise _BadRequest(400, "prompt must be a string")
            prompt_tokens = count_words(prompt) + count_words(body.get("suffix"))
            prompt_tokens += count_words(body.get("system"))
            gen = self._generation(body, chat=False, prompt_tokens=prompt_tokens)
        except _BadRequest as exc:
            return ollama_error(exc.status, exc.message)
        if not prompt:
            return self._loaded(gen)
        return await self._generate(request, gen)

    def _loaded(self, gen: _Generation) -> web.Response:
        """Ollama answers an empty prompt by loading the model: ``done_reason: "load"``."""
        body: dict[str, Any] = {"model": gen.model, "created_at": _now_rfc3339()}
        body.update(self._content(gen.chat, ""))
        body.update({"done": True, "done_reason": "load"})
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _generate(self, request: web.Request, gen: _Generation) -> web.StreamResponse:
        async with self._state.admit() as plan:
            if plan.fail_status is not None:
                return ollama_error(plan.fail_status, plan.fail_message, plan.fail_retry_after_s)
            if plan.hang:
                await self._state.hang(request)
            count = plan.completion_tokens
            reason = "stop"
            if gen.max_tokens is not None and gen.max_tokens < count:
                count, reason = gen.max_tokens, "length"
            self._state.count_tokens(gen.prompt_tokens, count)
            if gen.stream:
                return await self._stream(request, gen, plan, count, reason)
            return await self._complete(request, gen, plan, count, reason)

    @staticmethod
    def _content(chat: bool, text: str, **message: Any) -> dict[str, Any]:
        """The reply's text field; ``message`` adds chat message fields (tool_calls, thinking)."""
        if chat:
            return {"message": {"role": "assistant", "content": text, **message}}
        return {"response": text}

    @staticmethod
    def _extras(shape: ReplyShape, pieces: list[str], start: int) -> dict[str, Any]:
        return {"logprobs": shape.logprob_entries(pieces, start)} if shape.logprobs else {}

    def _final(self, gen: _Generation, count: int, reason: str, text: str, started: float,
               first_token_at: float) -> dict[str, Any]:
        ended = time.perf_counter()
        body: dict[str, Any] = {"model": gen.model, "created_at": _now_rfc3339()}
        body.update(self._content(gen.chat, text))
        body.update({
            "done": True,
            "done_reason": reason,
            "total_duration": int((ended - started) * 1e9),
            "load_duration": 0,
            "prompt_eval_count": gen.prompt_tokens,
            "prompt_eval_duration": int((first_token_at - started) * 1e9),
            "eval_count": count,
            "eval_duration": int((ended - first_token_at) * 1e9),
        })
        return body

    async def _complete(self, request: web.Request, gen: _Generation, plan: RequestPlan, count: int,
                        reason: str) -> web.Response:
        started = time.perf_counter()
        if plan.prefill_delay_s:
            await asyncio.sleep(plan.prefill_delay_s)
        if plan.cut_after_tokens is not None:
            await self._state.drop_connection(request)
        first_token_at = time.perf_counter()
        if plan.token_delay_s and count > 1:
            await asyncio.sleep(plan.token_delay_s * (count - 1))
        shape = gen.shape
        pieces = shape.pieces(count)
        body = self._final(gen, count, reason, "".join(pieces), started, first_token_at)
        if gen.chat:
            body["message"].update(self._message_extras(shape))
        body.update(self._extras(shape, pieces, 0))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stream(self, request: web.Request, gen: _Generation, plan: RequestPlan, count: int,
                      reason: str) -> web.StreamResponse:
        fault = plan.stream_fault
        if fault is not None and fault not in NDJSON_FAULTS:
            return ollama_error(500, f"simulator: stream fault {fault!r} has no NDJSON form")
        started = time.perf_counter()
        response = web.StreamResponse(headers={"Content-Type": _NDJSON_TYPE})
        await response.prepare(request)
        if plan.prefill_delay_s:
            await asyncio.sleep(plan.prefill_delay_s)
        first_token_at = time.perf_counter()
        loop = asyncio.get_running_loop()
        loop_start = loop.time()
        created_at = _now_rfc3339()
        cut = plan.cut_after_tokens
        shape = gen.shape
        pieces = shape.pieces(count)
        for extra in self._leading_events(gen):
            await response.write(orjson.dumps({"model": gen.model, "created_at": created_at, **extra,
                                               "done": False}) + b"\n")
        fault_at = plan.stream_fault_after if fault is not None else -1
        for index in range(len(pieces) if cut is None else min(len(pieces), cut)):
            if index == fault_at and not await self._write_fault(response, gen, created_at, plan):
                return response
            if index and plan.token_delay_s:
                delay = loop_start + index * plan.token_delay_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            line = {"model": gen.model, "created_at": created_at,
                    **self._content(gen.chat, pieces[index]), **self._extras(shape, pieces[index:index + 1], index),
                    "done": False}
            await response.write(orjson.dumps(line) + b"\n")
        if cut is not None:
            await self._state.drop_connection(request)
        if fault_at >= len(pieces) and not await self._write_fault(response, gen, created_at, plan):
            return response
        final = self._final(gen, count, reason, "", started, first_token_at)
        await response.write(orjson.dumps(final) + b"\n")
        await response.write_eof()
        return response

    @staticmethod
    def _message_extras(shape: ReplyShape) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if shape.tool_calls:
            extras["tool_calls"] = shape.tool_calls
        if shape.thinking:
            extras["thinking"] = shape.thinking
        return extras

    def _leading_events(self, gen: _Generation) -> list[dict[str, Any]]:
        """Streamed events before the text: the thinking, then each tool call in its own event."""
        shape = gen.shape
        if not gen.chat:
            return []
        events = [self._content(True, "", thinking=shape.thinking)] if shape.thinking else []
        events += [self._content(True, "", tool_calls=[call]) for call in shape.tool_calls]
        return events

    async def _write_fault(self, response: web.StreamResponse, gen: _Generation, created_at: str,
                           plan: RequestPlan) -> bool:
        """Write the scripted fault; False when the stream ends with it."""
        fault = plan.stream_fault or ""
        event = {"model": gen.model, "created_at": created_at, **self._content(gen.chat, " fault")}
        event["done"] = False
        text_field = ("message", "content") if gen.chat else ("response",)
        await response.write(ndjson_fault(fault, event, text_field, plan.fault_line_bytes))
        if fault in ENDS_STREAM:
            await response.write_eof()
            return False
        return True

    async def embed(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_body(request)
            items = embedding_inputs(body.get("input"))
            if items is None:
                raise _BadRequest(400, "input must be a non-empty string or list of strings")
        except _BadRequest as exc:
            return ollama_error(exc.status, exc.message)
        started = time.perf_counter()
        async with self._state.admit() as plan:
            if plan.fail_status is not None:
                return ollama_error(plan.fail_status, plan.fail_message, plan.fail_retry_after_s)
            if plan.hang:
                await self._state.hang(request)
            if plan.prefill_delay_s:
                await asyncio.sleep(plan.prefill_delay_s)
            prompt_tokens = count_words(items)
            self._state.count_tokens(prompt_tokens, 0)
            result = {
                "model": body["model"],
                "embeddings": [_truncated(embedding_vector(item), body.get("dimensions")) for item in items],
                "total_duration": int((time.perf_counter() - started) * 1e9),
                "load_duration": 0,
                "prompt_eval_count": prompt_tokens,
            }
            return web.Response(body=orjson.dumps(result), content_type="application/json")

    async def tags(self, request: web.Request) -> web.Response:
        name = f"{self._model}:latest"
        model = {
            "name": name,
            "model": name,
            "modified_at": self._modified_at,
            "size": 0,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "simulator",
                "families": ["simulator"],
                "parameter_size": "0",
                "quantization_level": "none",
            },
        }
        return web.Response(body=orjson.dumps({"models": [model]}), content_type="application/json")

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps({"version": SIMULATED_OLLAMA_VERSION}), content_type="application/json"
        )
