"""The simulator's OpenAI-compatible front end, shaped like vLLM's server.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``POST /v1/embeddings``,
``GET /v1/models``, ``GET /metrics`` (vLLM-style gauges), and llama-server's tokenizer endpoints:
``POST /tokenize`` (``{"content": ...}`` → ``{"tokens": [...]}``, one token per whitespace-separated
word, as the simulator counts) and ``POST /apply-template`` (``{"messages": [...]}`` →
``{"prompt": ...}``, the messages' text, which tokenizes to the chat's prompt token count).
Streams are Server-Sent Events with one chunk per simulated token, a final chunk carrying
``finish_reason``, an optional usage chunk (``stream_options.include_usage``) and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from inferlab.testing._faults import ENDS_STREAM, SSE_FAULTS, sse_fault
from inferlab.testing._state import RequestPlan, SimulatorState
from inferlab.testing._text import (
    count_message_words,
    count_words,
    embedding_base64,
    embedding_inputs,
    embedding_vector,
    generated_text,
    message_text,
    token_id,
    token_text,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_KV_CACHE_SLOTS_WITHOUT_LIMIT = 64
_KV_BLOCK_SIZE = 16
_KV_BLOCKS_PER_SLOT = 256  # 4,096 tokens of KV cache per simulated slot


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def error_response(
    status: int, message: str, code: str | None = None, retry_after_s: int | None = None
) -> web.Response:
    """An OpenAI-shaped error body with the given status."""
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    if retry_after_s is None and status in (429, 503):
        retry_after_s = 1
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


@dataclass(frozen=True, slots=True)
class _Generation:
    chat: bool
    stream: bool
    include_usage: bool
    max_tokens: int | None
    prompt_tokens: int


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class OpenAIFrontEnd:
    """Request handlers for the OpenAI protocol over one ``SimulatorState``."""

    def __init__(self, state: SimulatorState, model: str) -> None:
        self._state = state
        self._model = model
        self._created = int(time.time())

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/completions", self.completions),
            web.post("/v1/embeddings", self.embeddings),
            web.get("/v1/models", self.models),
            web.get("/metrics", self.metrics),
            web.post("/tokenize", self.tokenize),
            web.post("/apply-template", self.apply_template),
        ]

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise _BadRequest(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest(400, "request body must be a JSON object")
        self._state.last_request = body
        model = body.get("model", self._model)
        if model != self._model:
            raise _BadRequest(404, f"The model `{model}` does not exist.", "model_not_found")
        return body

    def _generation(self, body: dict[str, Any], *, chat: bool, prompt_tokens: int) -> _Generation:
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _BadRequest(400, "max_tokens must be a positive integer")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _BadRequest(400, "stream must be a boolean")
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        return _Generation(chat, stream, include_usage, max_tokens, prompt_tokens)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _BadRequest(400, "messages must be a non-empty list")
            gen = self._generation(body, chat=True, prompt_tokens=count_message_words(messages))
        except _BadRequest as exc:
            return error_response(exc.status, exc.message, exc.code)
        return await self._generate(request, gen)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_body(request)
            prompt = body.get("prompt")
            if not isinstance(prompt, (str, list)):
                raise _BadRequest(400, "prompt must be a string or a list")
            prompt_tokens = count_words(prompt) + count_words(body.get("suffix"))
            gen = self._generation(body, chat=False, prompt_tokens=prompt_tokens)
        except _BadRequest as exc:
            return error_response(exc.status, exc.message, exc.code)
        return await self._generate(request, gen)

    async def _generate(self, request: web.Request, gen: _Generation) -> web.StreamResponse:
        async with self._state.admit() as plan:
            if plan.fail_status is not None:
                return error_response(plan.fail_status, plan.fail_message, retry_after_s=plan.fail_retry_after_s)
            if plan.hang:
                await self._state.hang(request)
            count = plan.completion_tokens
            finish = "stop"
            if gen.max_tokens is not None and gen.max_tokens < count:
                count, finish = gen.max_tokens, "length"
            self._state.count_tokens(gen.prompt_tokens, count)
            if gen.stream:
                return await self._stream(request, gen, plan, count, finish)
            return await self._complete(request, gen, plan, count, finish)

    async def _complete(
        self, request: web.Request, gen: _Generation, plan: RequestPlan, count: int, finish: str
    ) -> web.Response:
        prefill = plan.prefill_delay_s + plan.prefill_token_delay_s * gen.prompt_tokens
        if prefill:
            await asyncio.sleep(prefill)
        if plan.cut_after_tokens is not None:
            await self._state.drop_connection(request)
        if plan.token_delay_s and count > 1:
            await asyncio.sleep(plan.token_delay_s * (count - 1) * self._state.slowdown())
        text = generated_text(count)
        if gen.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish,
            }
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {
            "id": _new_id(gen.chat),
            "object": "chat.completion" if gen.chat else "text_completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [choice],
        }
        if plan.report_usage:
            body["usage"] = _usage(gen.prompt_tokens, count)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _stream(
        self, request: web.Request, gen: _Generation, plan: RequestPlan, count: int, finish: str
    ) -> web.StreamResponse:
        fault = plan.stream_fault
        if fault is not None and fault not in SSE_FAULTS:
            return error_response(500, f"simulator: stream fault {fault!r} has no SSE form")
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        envelope: dict[str, Any] = {
            "id": _new_id(gen.chat),
            "object": "chat.completion.chunk" if gen.chat else "text_completion",
            "created": int(time.time()),
            "model": self._model,
        }
        prefill = plan.prefill_delay_s + plan.prefill_token_delay_s * gen.prompt_tokens
        if prefill:
            await asyncio.sleep(prefill)
        loop = asyncio.get_running_loop()
        next_token_at = loop.time()
        cut = plan.cut_after_tokens
        fault_at = plan.stream_fault_after if fault is not None else -1
        for index in range(count if cut is None else min(count, cut)):
            if index == fault_at and not await self._write_fault(response, envelope, gen.chat, plan):
                return response
            if index and plan.token_delay_s:
                next_token_at += plan.token_delay_s * self._state.slowdown()
                await _sleep_until(next_token_at)
            await response.write(self._chunk(envelope, gen.chat, index, token_text(index), None))
            self._state.stats.streamed_tokens_total += 1
        if cut is not None:
            await self._state.drop_connection(request)
        if fault_at >= count and not await self._write_fault(response, envelope, gen.chat, plan):
            return response
        await response.write(self._chunk(envelope, gen.chat, count, None, finish))
        if gen.include_usage and plan.report_usage:
            usage_chunk = {**envelope, "choices": [], "usage": _usage(gen.prompt_tokens, count)}
            await response.write(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
        if fault != "no_done":
            await response.write(_DONE)
        await response.write_eof()
        return response

    async def _write_fault(
        self, response: web.StreamResponse, envelope: dict[str, Any], chat: bool, plan: RequestPlan
    ) -> bool:
        """Write the scripted fault; False when the stream ends with it."""
        fault = plan.stream_fault or ""
        text_field = ("choices", 0, "delta", "content") if chat else ("choices", 0, "text")
        chunk = orjson.loads(self._chunk(envelope, chat, 1, " fault", None)[6:])
        await response.write(sse_fault(fault, chunk, text_field, plan.fault_line_bytes))
        if fault in ENDS_STREAM:
            await response.write_eof()
            return False
        return True

    @staticmethod
    def _chunk(
        envelope: dict[str, Any], chat: bool, index: int, text: str | None, finish: str | None
    ) -> bytes:
        choice: dict[str, Any]
        if chat:
            delta: dict[str, Any] = {} if text is None else {"content": text}
            if index == 0 and text is not None:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**envelope, "choices": [choice]}) + b"\n\n"

    async def embeddings(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_body(request)
            items = embedding_inputs(body.get("input"))
            if items is None:
                raise _BadRequest(400, "input must be a non-empty string, token list, or list of them")
        except _BadRequest as exc:
            return error_response(exc.status, exc.message, exc.code)
        as_base64 = body.get("encoding_format") == "base64"
        async with self._state.admit() as plan:
            if plan.fail_status is not None:
                return error_response(plan.fail_status, plan.fail_message, retry_after_s=plan.fail_retry_after_s)
            if plan.hang:
                await self._state.hang(request)
            if plan.prefill_delay_s:
                await asyncio.sleep(plan.prefill_delay_s)
            data = []
            for index, item in enumerate(items):
                vector = embedding_vector(item)
                encoded: Any = embedding_base64(vector) if as_base64 else vector
                data.append({"object": "embedding", "index": index, "embedding": encoded})
            prompt_tokens = count_words(items)
            self._state.count_tokens(prompt_tokens, 0)
            usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
            result = {"object": "list", "data": data, "model": self._model, "usage": usage}
            return web.Response(body=orjson.dumps(result), content_type="application/json")

    async def tokenize(self, request: web.Request) -> web.Response:
        """llama-server's ``POST /tokenize``: ``{"content": text}`` → ``{"tokens": [ids]}``."""
        self._state.stats.tokenize_total += 1
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return error_response(400, "request body is not valid JSON")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            return error_response(400, "content must be a string")
        return web.Response(body=orjson.dumps({"tokens": [token_id(word) for word in content.split()]}),
                            content_type="application/json")

    async def apply_template(self, request: web.Request) -> web.Response:
        """llama-server's ``POST /apply-template``: chat messages → the prompt text the model sees."""
        self._state.stats.tokenize_total += 1
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return error_response(400, "request body is not valid JSON")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return error_response(400, "messages must be a list")
        return web.Response(body=orjson.dumps({"prompt": message_text(messages)}), content_type="application/json")

    async def models(self, request: web.Request) -> web.Response:
        model = {
            "id": self._model,
            "object": "model",
            "created": self._created,
            "owned_by": "inferlab-simulator",
        }
        return web.Response(
            body=orjson.dumps({"object": "list", "data": [model]}), content_type="application/json"
        )

    async def metrics(self, request: web.Request) -> web.Response:
        stats = self._state.stats
        limit = self._state.script.max_concurrency or _KV_CACHE_SLOTS_WITHOUT_LIMIT
        label = f'{{model_name="{self._model}"}}'
        samples = [
            ("vllm:num_requests_running", "gauge", "Requests running (simulated).", stats.running),
            ("vllm:num_requests_waiting", "gauge", "Requests waiting (simulated).", stats.waiting),
            ("vllm:kv_cache_usage_perc", "gauge", ("KV-cache usage, 1 = 100% (simulated: running "
                                                   "requests over max_concurrency, or over 64 slots without a limit)."),
             min(1.0, stats.running / limit)),
            ("vllm:prompt_tokens_total", "counter", "Prefill tokens processed (simulated).",
             stats.prompt_tokens_total),
            ("vllm:generation_tokens_total", "counter", "Generation tokens produced (simulated).",
             stats.generation_tokens_total),
        ]
        lines = []
        for name, kind, help_text, value in samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{label} {float(value)}"]
        blocks = limit * _KV_BLOCKS_PER_SLOT  # the KV cache, as vLLM states its configuration
        lines += ["# HELP vllm:cache_config_info Information of the KV cache (simulated).",
                  "# TYPE vllm:cache_config_info gauge",
                  f'vllm:cache_config_info{{block_size="{_KV_BLOCK_SIZE}",num_gpu_blocks="{blocks}"}} 1.0']
        return web.Response(
            body=("\n".join(lines) + "\n").encode(), headers={"Content-Type": _PROMETHEUS_TYPE}
        )


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _new_id(chat: bool) -> str:
    return ("chatcmpl-sim" if chat else "cmpl-sim") + os.urandom(12).hex()
