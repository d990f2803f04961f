"""JetStream (Google's LLM server for TPUs, MaxText and PyTorch/XLA engines) over its HTTP API.

``POST /v1/generate`` (``jetstream_request``) streams ``DecodeResponse`` messages
(``jetstream_stream``); ``GET /v1/health`` says whether the server is live. JetStream only
streams, so a non-streamed request reads the whole stream. It reports no usage: completion tokens
are the token ids it streamed, prompt tokens are estimated from the prompt's size (4 bytes a
token, as the scheduler's own estimate) and marked so in the response's ``usage``
(``estimated: true``). It serves no embeddings (400).

vLLM on TPU needs no adapter of its own: it serves the OpenAI API (``backend: openai``,
``engine: vllm``), like vLLM on GPUs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from inferlab.backends.http import (
    DEFAULT_MAX_STREAM_LINE_BYTES,
    raise_for_engine_status,
    translate_client_error,
)
from inferlab.backends.jetstream_request import ChatTemplate, decode_request, stop_sequences
from inferlab.backends.jetstream_stream import JsonObjectStream, StopScanner, samples
from inferlab.errors import UnsupportedFeature
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, RequestKind, StreamChunk, Usage

BYTES_PER_TOKEN = 4


def estimated_prompt_tokens(prompt: str) -> int:
    return max(1, -(-len(prompt.encode()) // BYTES_PER_TOKEN))


class JetStreamBackend:
    """One JetStream HTTP server at ``base_url`` (e.g. ``http://jetstream:8000``)."""

    def __init__(self, name: str, base_url: str, session: aiohttp.ClientSession, *,
                 chat_template: ChatTemplate = "plain", max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self._session = session
        self._template: ChatTemplate = chat_template
        self._max_bytes = max_line_bytes

    def is_available(self) -> bool:
        return True

    async def _pieces(self, request: InferenceRequest) -> AsyncIterator[tuple[str, int, str | None]]:
        """(text to send, tokens it took, finish reason on the last one) as JetStream streams."""
        chat = request.kind is RequestKind.CHAT
        native = decode_request(request.body, chat=chat, template=self._template)
        scanner = StopScanner(stop_sequences(request.body))
        tokens = 0
        try:
            async with self._session.post(self.base_url + "/v1/generate", data=orjson.dumps(native),
                                          headers={"Content-Type": "application/json"}) as response:
                await raise_for_engine_status(self.name, response, request.request_id)
                parser = JsonObjectStream(self.name, self._max_bytes)
                while block := await response.content.readany():
                    for message in parser.feed(block):
                        sample = samples(self.name, message)
                        if sample is None:
                            continue
                        tokens += sample[1]
                        text = scanner.push(sample[0])
                        if scanner.stopped:
                            yield text, sample[1], "stop"
                            return
                        yield text, sample[1], None
                parser.end()
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)
        reason = "length" if tokens >= native["max_tokens"] else "stop"
        yield scanner.flush(), 0, reason

    def _usage(self, request: InferenceRequest, completion: int) -> Usage:
        native = decode_request(request.body, chat=request.kind is RequestKind.CHAT, template=self._template)
        return Usage(prompt_tokens=estimated_prompt_tokens(native["text_content"]["text"]),
                     completion_tokens=completion)

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        parts, completion, reason = [], 0, "stop"
        async for text, tokens, finish in self._pieces(request):
            parts.append(text)
            completion += tokens
            reason = finish or reason
        usage = self._usage(request, completion)
        text = "".join(parts)
        chat = request.kind is RequestKind.CHAT
        choice: dict[str, Any] = ({"index": 0, "message": {"role": "assistant", "content": text}} if chat
                                  else {"index": 0, "text": text, "logprobs": None})
        choice["finish_reason"] = reason
        body = {"id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
                "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": request.model, "choices": [choice], "usage": {**usage.to_openai(), "estimated": True}}
        return InferenceResponse(body=body, usage=usage)

    async def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        chat = request.kind is RequestKind.CHAT
        chunk_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        completion = 0
        async for text, tokens, finish in self._pieces(request):
            completion += tokens
            if not text and finish is None:
                continue
            choice: dict[str, Any] = ({"index": 0, "delta": {"content": text}} if chat
                                      else {"index": 0, "text": text, "logprobs": None})
            choice["finish_reason"] = finish
            data: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk" if chat else "text_completion",
                                    "created": created, "model": request.model, "choices": [choice]}
            usage = self._usage(request, completion) if finish is not None else None
            if usage is not None:
                data["usage"] = {**usage.to_openai(), "estimated": True}
            yield StreamChunk(data=data, usage=usage)
            if finish is not None:
                return

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        raise UnsupportedFeature(f"model {request.model!r} runs on JetStream, which serves no embeddings")

    async def health(self) -> BackendHealth:
        try:
            async with self._session.get(self.base_url + "/v1/health") as response:
                if response.status != 200:
                    return BackendHealth(healthy=False, detail=f"HTTP {response.status}")
                live = orjson.loads(await response.read()).get("is_live")
                return BackendHealth(healthy=str(live).lower() == "true", detail=f"is_live={live}")
        except Exception as exc:  # noqa: BLE001 - a failed probe is an answer
            return BackendHealth(healthy=False, detail=type(exc).__name__)
