"""Shared HTTP plumbing for engine adapters: one error translation, one SSE line reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, NoReturn

import aiohttp
import orjson

from inferlab.backends.engine_errors import engine_error, engine_error_message
from inferlab.errors import InferLabError, UpstreamError, UpstreamTimeout

MAX_ERROR_BODY = 64 * 1024

__all__ = ["engine_error_message", "ndjson_lines", "raise_for_engine_status", "sse_data_lines", "translate_client_error"]


async def raise_for_engine_status(
    backend: str, response: aiohttp.ClientResponse, request_id: str | None = None, secrets: Iterable[str | None] = ()
) -> None:
    """Raise the InferLab error for an engine's error status (see ``engine_errors``): the engine's
    text is logged redacted, the client gets the gateway's own message. ``secrets``: what the
    gateway sent the engine (its API key), removed from the log wherever it appears."""
    if response.status < 400:
        return
    raw = await response.content.read(MAX_ERROR_BODY)
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = raw.decode("utf-8", "replace").strip() or response.reason or ""
    raise engine_error(
        backend, response.status, payload, request_id=request_id, secrets=secrets, headers=response.headers
    )


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
