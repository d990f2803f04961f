"""Server-sent events as the OpenAI API sends them, and the stream's writer."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
from aiohttp import web

from inferlab.api.http_server import SERVER

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
               "Server": SERVER}
DONE = b"data: [DONE]\n\n"
DRAIN_ABOVE_BYTES = 64 * 1024  # unsent bytes past which the writer waits for the client (aiohttp's own limit)

T = TypeVar("T")


class WouldSuspend(RuntimeError):
    """A coroutine run by ``complete_now`` had to wait: it was closed, unfinished."""


def complete_now(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end here, outside any task, when it never has to wait: aiohttp's
    ``prepare`` of a response without compression in an app without ``on_response_prepare``
    handlers, and a first write far below ``DRAIN_ABOVE_BYTES``. From a callback (the engine
    connection's), that is the stream's first event sent without waiting for the handler's task."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    work.close()
    raise WouldSuspend(f"{work!r} waited: it cannot be completed outside a task")


def prepares_without_waiting(request: web.Request) -> bool:
    """No application on ``request``'s route has ``on_response_prepare`` handlers (which may wait)."""
    return not any(app.on_response_prepare for app in request.match_info.apps)


class SseResponse(web.StreamResponse):
    """A stream whose last event (``[DONE]``) is held back until its end: aiohttp ends a response
    once the handler and the middleware returned, so the client sees the stream end only after the
    call's clean-ups, its metrics and its access line — a client that sends its next request on
    ``[DONE]`` finds the gateway done with this one (its limits settled, its slot free) instead of
    still busy with it. The held event and the end of the body go out in one write.

    The head is not written by ``prepare``: it goes out with the first event, in one write (one
    system call and one TCP segment on a stream's first-token path instead of two). A stream writes
    its first event, its error event or its replay right after ``prepare``; one whose first chunk
    shows the client nothing (usage it did not ask for) sends the head with the next event or the
    end of the body."""

    _held: bytes = b""
    _send_headers_immediately = False

    def end_with(self, event: bytes) -> None:
        self._held = event

    async def write_eof(self, data: bytes = b"") -> None:
        held, self._held = self._held, b""
        await super().write_eof(held + data)


def sse_event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class ChunkWriter:
    """A stream's events on their way to the client, once its head is out.

    ``write`` sends the first through aiohttp (which sends the response head with it); the following
    ones, when the response is plain chunked HTTP/1.1 (no compression), go to the transport as one
    chunk each: ``send`` is one call and one write per event instead of aiohttp's four coroutine
    frames, and says when the client is behind (the caller then awaits ``drain``). A client that went
    away is ``ConnectionResetError``, as aiohttp raises it.
    """

    __slots__ = ("_request", "_response", "_transport")

    def __init__(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        self._request = request
        self._response = response
        self._transport: asyncio.Transport | None = None  # once writes may bypass aiohttp

    def send(self, data: bytes) -> bool:
        """Write one event; True when the client is behind and ``drain`` should be awaited."""
        transport = self._transport
        if transport is None:
            raise RuntimeError("ChunkWriter.send before the first write, or on a response that is not plain chunked")
        if transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return transport.get_write_buffer_size() > DRAIN_ABOVE_BYTES

    @property
    def direct(self) -> bool:
        return self._transport is not None

    async def write(self, data: bytes) -> None:
        if self._transport is not None:
            if self.send(data):
                await self.drain()
            return
        response = self._response
        await response.write(data)  # the first (with the head), or every one when not plain chunked
        if getattr(self._request.writer, "chunked", False) and not response.compression:  # aiohttp chose chunks
            self._transport = self._request.transport

    async def drain(self) -> None:
        await self._request.writer.drain()
