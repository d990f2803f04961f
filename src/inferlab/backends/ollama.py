"""Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``), translated to and from
OpenAI's shapes so clients see one API whatever runs behind it."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from inferlab.backends.engine_errors import engine_error
from inferlab.backends.http import (
    DEFAULT_MAX_STREAM_LINE_BYTES,
    incomplete_stream,
    malformed_stream,
    ndjson_lines,
    raise_for_engine_status,
    translate_client_error,
)
from inferlab.backends.ollama_request import chat_request, embed_request, generate_request
from inferlab.backends.ollama_response import (
    ReplyState,
    chat_logprobs,
    completion_logprobs,
    finish_reason,
    missing_logprobs,
    tool_calls,
)
from inferlab.errors import UnsupportedFeature, UpstreamError
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, RequestKind, StreamChunk, Usage


def _usage(event: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(event.get("prompt_eval_count") or 0),
        completion_tokens=int(event.get("eval_count") or 0),
    )


def _check_logprobs(native: dict[str, Any], event: dict[str, Any]) -> None:
    if missing_logprobs(native, event):
        raise UnsupportedFeature(
            "'logprobs' is not supported by this model's engine: it returned no log probabilities "
            "(Ollama returns them from version 0.12.11 on)",
            param="logprobs",
        )


def _message(event: dict[str, Any]) -> dict[str, Any]:
    message = event.get("message")
    return message if isinstance(message, dict) else {}


class OllamaBackend:
    """One Ollama server at ``base_url`` (e.g. ``http://127.0.0.1:11434``)."""

    def __init__(
        self, name: str, base_url: str, session: aiohttp.ClientSession, *, served_name: str,
        max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES,
    ) -> None:
        self.name = name
        self._max_line_bytes = max_line_bytes
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self._session = session
        self._served_name = served_name

    def is_available(self) -> bool:
        return True

    def _native_request(self, request: InferenceRequest, *, stream: bool) -> tuple[str, dict[str, Any]]:
        if request.kind is RequestKind.CHAT:
            return self.base_url + "/api/chat", chat_request(request.body, self._served_name, stream=stream)
        return self.base_url + "/api/generate", generate_request(request.body, self._served_name, stream=stream)

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        url, native = self._native_request(request, stream=False)
        event = await self._post(url, native, request.request_id)
        _check_logprobs(native, event)
        usage = _usage(event)
        created = int(time.time())
        state = ReplyState()
        if request.kind is RequestKind.CHAT:
            message = _message(event)
            reply: dict[str, Any] = {"role": "assistant", "content": message.get("content", "")}
            calls = tool_calls(message, state, self.name)
            if calls:
                reply["tool_calls"] = calls
                reply["content"] = reply["content"] or None
            if message.get("thinking"):
                reply["reasoning_content"] = message["thinking"]
            choice: dict[str, Any] = {"index": 0, "message": reply, "logprobs": chat_logprobs(event)}
            obj, prefix = "chat.completion", "chatcmpl-"
        else:
            choice = {"index": 0, "text": event.get("response", ""), "logprobs": completion_logprobs(event, state)}
            obj, prefix = "text_completion", "cmpl-"
        choice["finish_reason"] = finish_reason({**event, "done": True}, state)
        body = {
            "id": prefix + uuid.uuid4().hex,
            "object": obj,
            "created": created,
            "model": request.model,
            "choices": [choice],
            "usage": usage.to_openai(),
        }
        return InferenceResponse(body=body, usage=usage)

    async def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        url, native = self._native_request(request, stream=True)
        chat = request.kind is RequestKind.CHAT
        chunk_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        state = ReplyState()
        try:
            async with self._session.post(url, data=orjson.dumps(native)) as response:
                await raise_for_engine_status(self.name, response, request.request_id)
                done = False
                async for event in ndjson_lines(response, self.name, self._max_line_bytes):
                    if "error" in event:
                        raise engine_error(self.name, None, event, request_id=request.request_id)
                    if done:
                        raise malformed_stream(self.name, "events after its final one")
                    done = bool(event.get("done"))
                    _check_logprobs(native, event)
                    yield self._chunk(request, event, chunk_id, created, chat, state)
                if not done:
                    raise incomplete_stream(self.name)  # Ollama ends every stream with "done": true
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)

    def _chunk(
        self, request: InferenceRequest, event: dict[str, Any], chunk_id: str, created: int, chat: bool,
        state: ReplyState,
    ) -> StreamChunk:
        if chat:
            message = _message(event)
            delta: dict[str, Any] = {"content": message.get("content", "")}
            calls = tool_calls(message, state, self.name)
            if calls:
                delta["tool_calls"] = calls
            if message.get("thinking"):
                delta["reasoning_content"] = message["thinking"]
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": chat_logprobs(event)}
        else:
            choice = {"index": 0, "text": event.get("response", ""), "logprobs": completion_logprobs(event, state)}
        choice["finish_reason"] = finish_reason(event, state)
        data: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": request.model,
            "choices": [choice],
        }
        usage = _usage(event) if event.get("done") else None
        if usage is not None:
            data["usage"] = usage.to_openai()
        return StreamChunk(data=data, usage=usage)

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        event = await self._post(
            self.base_url + "/api/embed", embed_request(request.body, self._served_name), request.request_id
        )
        vectors = event.get("embeddings") or []
        if request.body.get("encoding_format") == "base64":
            try:
                vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
            except (struct.error, TypeError) as exc:
                raise UpstreamError(f"engine {self.name} sent embeddings that are not lists of numbers") from exc
        usage = Usage(prompt_tokens=int(event.get("prompt_eval_count") or 0))
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": request.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
        }
        return InferenceResponse(body=body, usage=usage)

    async def _post(self, url: str, native: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        try:
            async with self._session.post(url, data=orjson.dumps(native)) as response:
                await raise_for_engine_status(self.name, response, request_id)
                event = orjson.loads(await response.read())
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"engine {self.name} sent a body that is not JSON") from exc
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)
        if not isinstance(event, dict):
            raise UpstreamError(f"engine {self.name} sent an unexpected response shape")
        return event

    async def health(self) -> BackendHealth:
        try:
            async with self._session.get(self.base_url + "/api/tags") as response:
                return BackendHealth(healthy=response.status == 200, detail=f"HTTP {response.status}")
        except Exception as exc:  # noqa: BLE001 - a failed probe is an answer
            return BackendHealth(healthy=False, detail=type(exc).__name__)
