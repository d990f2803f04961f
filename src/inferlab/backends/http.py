"""Shared HTTP plumbing for engine adapters: one error translation, one SSE line reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import aiohttp
import orjson

from inferlab.errors import EngineRejected, InferLabError, UpstreamError, UpstreamTimeout

MAX_ERROR_BODY = 64 * 1024


def engine_error_message(payload: Any, fallback: str) -> str:
    """Pull a human message out of the error shapes engines use (OpenAI, llama.cpp, Ollama, TGI)."""
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or fallback)
        if isinstance(error, str) and error:
            return error
        if isinstance(error, list) and error:
            return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in error)
    return fallback


async def raise_for_engine_status(backend: str, response: aiohttp.ClientResponse) -> None:
    """Translate an engine's error status into InferLab's error tree (4xx → same status, else 502)."""
    if response.status < 400:
        return
    raw = await response.content.read(MAX_ERROR_BODY)
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = raw.decode("utf-8", "replace").strip()
    message = engine_error_message(payload, payload if isinstance(payload, str) and payload else response.reason or "")
    if 400 <= response.status < 500 and response.status not in (401, 403, 404, 408, 429):
        raise EngineRejected(f"engine rejected the request: {message}", status=response.status)
    raise UpstreamError(f"engine {backend} answered {response.status}: {message}")


def translate_client_error(backend: str, exc: BaseException) -> NoReturn:
    """Raise the InferLab error for an aiohttp/asyncio failure talking to an engine."""
    if isinstance(exc, InferLabError):
        raise exc
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        raise UpstreamTimeout(f"engine {backend} did not answer in time") from exc
    if isinstance(exc, aiohttp.ClientError):
        raise UpstreamError(f"engine {backend} is unreachable or closed the connection ({type(exc).__name__})") from exc
    raise exc


async def sse_data_lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Yield the payload of each ``data:`` line of a server-sent-event stream, as it arrives."""
    async for line in response.content:
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data:
                yield data


async def ndjson_lines(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for line in response.content:
        line = line.strip()
        if line:
            yield orjson.loads(line)
