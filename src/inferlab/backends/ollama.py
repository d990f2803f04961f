"""Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``), translated to and from
OpenAI's shapes so clients see one API whatever runs behind it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from inferlab.backends.http import ndjson_lines, raise_for_engine_status, translate_client_error
from inferlab.errors import UpstreamError
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, RequestKind, StreamChunk, Usage

# OpenAI sampling field → Ollama option name
_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}


def ollama_options(body: dict[str, Any]) -> dict[str, Any]:
    options = {_OPTION_NAMES[k]: v for k, v in body.items() if k in _OPTION_NAMES and v is not None}
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    return options


def _usage(event: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(event.get("prompt_eval_count") or 0),
        completion_tokens=int(event.get("eval_count") or 0),
    )


def _finish_reason(event: dict[str, Any]) -> str | None:
    if not event.get("done"):
        return None
    return "length" if event.get("done_reason") == "length" else "stop"


class OllamaBackend:
    """One Ollama server at ``base_url`` (e.g. ``http://127.0.0.1:11434``)."""

    def __init__(self, name: str, base_url: str, session: aiohttp.ClientSession, *, served_name: str) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self._session = session
        self._served_name = served_name

    def is_available(self) -> bool:
        return True

    def _native_request(self, request: InferenceRequest, *, stream: bool) -> tuple[str, dict[str, Any]]:
        body = request.body
        native: dict[str, Any] = {"model": self._served_name, "stream": stream, "options": ollama_options(body)}
        if request.kind is RequestKind.CHAT:
            native["messages"] = body["messages"]
            path = "/api/chat"
        else:
            prompt = body.get("prompt", "")
            native["prompt"] = prompt if isinstance(prompt, str) else "".join(map(str, prompt))
            if body.get("suffix") is not None:
                native["suffix"] = body["suffix"]
            path = "/api/generate"
        fmt = (body.get("response_format") or {}).get("type")
        if fmt == "json_object":
            native["format"] = "json"
        return self.base_url + path, native

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        url, native = self._native_request(request, stream=False)
        event = await self._post(url, native, request.request_id)
        usage = _usage(event)
        created = int(time.time())
        if request.kind is RequestKind.CHAT:
            message = event.get("message") or {}
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": message.get("content", "")},
                "finish_reason": _finish_reason(event) or "stop",
            }
            obj, prefix = "chat.completion", "chatcmpl-"
        else:
            choice = {"index": 0, "text": event.get("response", ""), "finish_reason": _finish_reason(event) or "stop"}
            obj, prefix = "text_completion", "cmpl-"
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
        try:
            async with self._session.post(
                url, data=orjson.dumps(native), headers={"x-request-id": request.request_id}
            ) as response:
                await raise_for_engine_status(self.name, response)
                async for event in ndjson_lines(response):
                    if "error" in event:
                        raise UpstreamError(f"engine {self.name} failed mid-stream: {event['error']}")
                    yield self._chunk(request, event, chunk_id, created, chat)
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)

    def _chunk(
        self, request: InferenceRequest, event: dict[str, Any], chunk_id: str, created: int, chat: bool
    ) -> StreamChunk:
        if chat:
            text = (event.get("message") or {}).get("content", "")
            choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": _finish_reason(event)}
        else:
            choice = {"index": 0, "text": event.get("response", ""), "finish_reason": _finish_reason(event)}
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
        native = {"model": self._served_name, "input": request.body["input"]}
        event = await self._post(self.base_url + "/api/embed", native, request.request_id)
        vectors = event.get("embeddings") or []
        usage = Usage(prompt_tokens=int(event.get("prompt_eval_count") or 0))
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": request.model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
        }
        return InferenceResponse(body=body, usage=usage)

    async def _post(self, url: str, native: dict[str, Any], request_id: str) -> dict[str, Any]:
        try:
            async with self._session.post(
                url, data=orjson.dumps(native), headers={"x-request-id": request_id}
            ) as response:
                await raise_for_engine_status(self.name, response)
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
