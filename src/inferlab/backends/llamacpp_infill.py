"""llama-server's native ``/infill``, behind an OpenAI text completion.

When the model's vocabulary has FIM tokens, llama-server builds the FIM prompt itself from token
ids (``input_prefix``, ``input_suffix``, and ``input_extra`` files laid out in the model's
repo-level format), so no sentinel can be mis-tokenised. A completion body that still carries
``suffix`` when it reaches this adapter goes there; the answer (llama.cpp's native ``/completion``
shape) comes back as an OpenAI ``text_completion``, whole or streamed.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson

from inferlab.backends.engine_client import EngineClient, EngineResponse
from inferlab.backends.http import (
    SseParser,
    incomplete_stream,
    malformed_stream,
    raise_for_engine_status,
    translate_client_error,
)
from inferlab.errors import UpstreamError
from inferlab.types import InferenceRequest, InferenceResponse, StreamChunk, Usage

# OpenAI completion field → llama-server /infill field (same meaning)
_SAME = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty", "top_k", "min_p",
         "n_indent", "t_max_predict_ms", "id_slot", "samplers")


def infill_body(body: dict[str, Any], *, stream: bool) -> bytes:
    """The /infill request for an OpenAI completion body with ``suffix`` (and ``input_extra``)."""
    native: dict[str, Any] = {
        "input_prefix": body.get("prompt") or "",
        "input_suffix": body.get("suffix") or "",
        "input_extra": body.get("input_extra") or [],
        "stream": stream,
        "cache_prompt": True,
    }
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        native["n_predict"] = max_tokens
    for key in _SAME:
        if body.get(key) is not None:
            native[key] = body[key]
    return orjson.dumps(native)


def _finish_reason(native: dict[str, Any]) -> str:
    if native.get("stop_type") == "limit" or native.get("truncated") or native.get("stopped_limit"):
        return "length"
    return "stop"


def _usage(native: dict[str, Any]) -> Usage:
    return Usage(int(native.get("tokens_evaluated") or 0), int(native.get("tokens_predicted") or 0))


def openai_completion(native: dict[str, Any], request: InferenceRequest, created: int) -> dict[str, Any]:
    usage = _usage(native)
    return {
        "id": f"cmpl-{request.request_id}", "object": "text_completion", "created": created, "model": request.model,
        "choices": [{"index": 0, "text": native.get("content") or "", "logprobs": None,
                     "finish_reason": _finish_reason(native)}],
        "usage": usage.to_openai(),
    }


async def infill(client: EngineClient, url: str, headers: dict[str, str], backend: str,
                 request: InferenceRequest, secrets: tuple[str | None, ...] = ()) -> InferenceResponse:
    try:
        async with await client.request("POST", url, infill_body(request.body, stream=False), headers) as response:
            await raise_for_engine_status(backend, response, request.request_id, secrets)
            native = orjson.loads(await response.read())
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"engine {backend} sent a body that is not JSON") from exc
    except Exception as exc:  # noqa: BLE001 - translated in one place
        translate_client_error(backend, exc)
    if not isinstance(native, dict):
        raise UpstreamError(f"engine {backend} sent an unexpected response shape")
    body = openai_completion(native, request, int(time.time()))
    return InferenceResponse(body=body, usage=_usage(native))


class InfillStream:
    """``AsyncIterator[StreamChunk]`` over one streamed /infill, as OpenAI completion chunks."""

    def __init__(self, client: EngineClient, url: str, headers: dict[str, str], *, backend: str,
                 request: InferenceRequest, max_line_bytes: int, secrets: tuple[str | None, ...] = ()) -> None:
        self._client, self._url, self._headers = client, url, headers
        self._backend, self._request, self._secrets = backend, request, secrets
        self._parser = SseParser(backend, max_line_bytes)
        self._response: EngineResponse | None = None
        self._ready: deque[StreamChunk] = deque()
        self._done = False
        self._created = int(time.time())

    def __aiter__(self) -> InfillStream:
        return self

    async def __anext__(self) -> StreamChunk:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            try:
                if self._response is None:
                    self._response = await self._client.request(
                        "POST", self._url, infill_body(self._request.body, stream=True), self._headers)
                    await raise_for_engine_status(self._backend, self._response, self._request.request_id, self._secrets)
                block = await self._response.readany()
            except Exception as exc:  # noqa: BLE001 - translated in one place
                self._done = True
                self.release()
                translate_client_error(self._backend, exc)
            if not block:
                self._done = True
                self.release()
                self._parser.end()
                raise incomplete_stream(self._backend)
            for data in self._parser.feed(block):
                self._take(data)
        return self._ready.popleft()

    def _take(self, data: bytes) -> None:
        if self._done or data == b"[DONE]":
            return
        try:
            native = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed_stream(self._backend, "a stream event that is not JSON") from None
        if not isinstance(native, dict):
            raise malformed_stream(self._backend, "a stream event that is not a JSON object")
        finished = bool(native.get("stop"))
        chunk = {
            "id": f"cmpl-{self._request.request_id}", "object": "text_completion", "created": self._created,
            "model": self._request.model,
            "choices": [{"index": 0, "text": native.get("content") or "", "logprobs": None,
                         "finish_reason": _finish_reason(native) if finished else None}],
        }
        usage = None
        if finished:
            usage = _usage(native)
            chunk["usage"] = usage.to_openai()
            self._done = True
            self.release()
        self._ready.append(StreamChunk(data=chunk, usage=usage))

    def release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()

    async def aclose(self) -> None:
        self._done = True
        self._ready.clear()
        self.release()
