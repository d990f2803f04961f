"""The simulator's JetStream front end: JetStream's HTTP server (``jetstream/entrypoints/http``).

Routes, as JetStream's FastAPI app has them:

- ``POST /v1/generate`` — body ``{"max_tokens": int, "text_content": {"text": str}}`` or
  ``"token_content": {"token_ids": [int]}``; any other field is a 422 in FastAPI's shape
  (``{"detail": [{"type": "extra_forbidden", "loc": ["body", name], ...}]}``), as JetStream's
  pydantic model forbids extras. The answer is ``text/event-stream`` without SSE framing:
  ``MessageToJson(DecodeResponse)`` per token — indented JSON, camelCase names
  (``{"streamContent": {"samples": [{"text": " word", "tokenIds": [123]}]}}``) — one after the
  other, then the body ends. No usage, no finish reason: at most ``max_tokens`` tokens.
- ``GET /v1/health`` → ``{"is_live": "True"}``; ``GET /`` → ``{"message": "JetStream HTTP Server"}``.

Faults follow the script: ``fail_status`` answers that status (``{"detail": message}``, FastAPI's
HTTPException), ``hang`` never answers, ``cut_after_tokens`` drops the connection mid-stream.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from aiohttp import web

from inferlab.testing._state import SimulatorState
from inferlab.testing._text import count_words, token_id, token_text

_FIELDS = {"max_tokens", "text_content", "token_content", "metadata", "num_samples"}


def _json(body: object, status: int = 200, indent: int | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, indent=indent), content_type="application/json")


def _unprocessable(errors: list[dict[str, Any]]) -> web.Response:
    return _json({"detail": errors}, 422)


def _validate(body: Any) -> tuple[int, int] | list[dict[str, Any]]:
    """(max_tokens, prompt tokens), or FastAPI's validation errors."""
    if not isinstance(body, dict):
        return [{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary",
                 "input": body}]
    errors = [{"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are not permitted",
               "input": body[name]} for name in body if name not in _FIELDS - {"metadata", "num_samples"}]
    max_tokens = body.get("max_tokens")
    if "max_tokens" not in body:
        errors.append({"type": "missing", "loc": ["body", "max_tokens"], "msg": "Field required", "input": body})
    elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        errors.append({"type": "int_parsing", "loc": ["body", "max_tokens"],
                       "msg": "Input should be a valid integer", "input": max_tokens})
    text = body.get("text_content")
    tokens = body.get("token_content")
    prompt = 0
    if isinstance(text, dict) and isinstance(text.get("text"), str) and set(text) == {"text"}:
        prompt = count_words(text["text"])
    elif isinstance(tokens, dict) and isinstance(tokens.get("token_ids"), list):
        prompt = len(tokens["token_ids"])
    elif text is not None or tokens is not None:
        errors.append({"type": "model_type", "loc": ["body", "text_content" if text is not None else "token_content"],
                       "msg": "Input should be a valid dictionary or instance", "input": text or tokens})
    return errors or (int(max_tokens), prompt)  # type: ignore[arg-type]


def _message(index: int) -> bytes:
    """One ``DecodeResponse`` as JetStream's ``proto_to_json_generator`` writes it."""
    word = token_text(index)
    sample = {"text": word, "tokenIds": [token_id(word.strip())]}
    return json.dumps({"streamContent": {"samples": [sample]}}, indent=2).encode()


class JetStreamFrontEnd:
    """Request handlers for JetStream's HTTP API over one ``SimulatorState``."""

    def __init__(self, state: SimulatorState) -> None:
        self._state = state

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.root), web.post("/v1/generate", self.generate), web.get("/v1/health", self.health)]

    async def root(self, request: web.Request) -> web.Response:
        return _json({"message": "JetStream HTTP Server"}, indent=4)

    async def health(self, request: web.Request) -> web.Response:
        return _json({"is_live": "True"}, indent=4)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _unprocessable([{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                                    "input": {}, "ctx": {"error": str(exc)}}])
        checked = _validate(body)
        if isinstance(checked, list):
            return _unprocessable(checked)
        self._state.last_request = body
        max_tokens, prompt_tokens = checked
        async with self._state.admit() as plan:
            if plan.fail_status is not None:
                return _json({"detail": plan.fail_message}, plan.fail_status)
            if plan.hang:
                await self._state.hang(request)
            count = min(plan.completion_tokens, max(max_tokens, 0))
            self._state.count_tokens(prompt_tokens, count)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
            await response.prepare(request)
            if plan.prefill_delay_s:
                await asyncio.sleep(plan.prefill_delay_s)
            cut = plan.cut_after_tokens
            for index in range(count if cut is None else min(count, cut)):
                if index and plan.token_delay_s:
                    await asyncio.sleep(plan.token_delay_s)
                await response.write(_message(index))
            if cut is not None:
                await self._state.drop_connection(request)
            await response.write_eof()
            return response
