"""Shared HTTP plumbing for engine adapters: one error translation, the SSE and NDJSON readers.

Engine streams are read line by line with a bounded line size (``upstream.max_stream_line_bytes``),
and whatever breaks one (an over-long line, a body that ends mid-line, an unknown SSE event or
field, an error event, a line that is not a JSON object) becomes an ``InferLabError`` here, so the
routes end the client's stream with one error event instead of forwarding it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, NoReturn

import aiohttp
import orjson
from aiohttp.http_exceptions import LineTooLong

from inferlab.backends.engine_client import EngineConnectionError, EngineResponse
from inferlab.backends.engine_errors import engine_error, engine_error_message
from inferlab.errors import InferLabError, UpstreamError, UpstreamTimeout

MAX_ERROR_BODY = 64 * 1024

__all__ = [
    "SseParser", "engine_error_message", "incomplete_stream", "malformed_stream", "ndjson_lines", "raise_for_engine_status",
    "sse_data_lines", "stream_error", "translate_client_error",
]

log = logging.getLogger("inferlab.backends")


async def raise_for_engine_status(
    backend: str, response: aiohttp.ClientResponse | EngineResponse, request_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> None:
    """Raise the InferLab error for an engine's error status (see ``engine_errors``): the engine's
    text is logged redacted, the client gets the gateway's own message. ``secrets``: what the
    gateway sent the engine (its API key), removed from the log wherever it appears."""
    if response.status < 400:
        return
    if isinstance(response, EngineResponse):
        raw = await response.read(MAX_ERROR_BODY)
    else:
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
    try:
        if isinstance(exc, InferLabError):
            raise exc
        if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            raise UpstreamTimeout(f"engine {backend} did not answer in time") from exc
        if isinstance(exc, (aiohttp.ClientError, EngineConnectionError)):
            raise UpstreamError(f"engine {backend} is unreachable or closed the connection ({type(exc).__name__})") from exc
        raise exc
    finally:
        # this frame is in the raised error's traceback: holding ``exc`` too would be a reference
        # cycle, keeping the request's whole call for the garbage collector
        del exc


DEFAULT_MAX_STREAM_LINE_BYTES = 1024 * 1024
_LOG_TEXT_CHARS = 500


def stream_error(
    backend: str, payload: Any, *, request_id: str | None = None, secrets: Iterable[str | None] = ()
) -> InferLabError:
    """The error for an engine's error object or event mid-stream: the engine's text goes to the
    log, redacted; the client gets the gateway's own message (``engine_errors.engine_error``)."""
    error = payload.get("error", payload) if isinstance(payload, dict) else None
    status = error.get("code") if isinstance(error, dict) else None
    status = status if isinstance(status, int) and 400 <= status < 600 else None
    return engine_error(backend, status, payload, request_id=request_id, secrets=secrets)


def malformed_stream(backend: str, what: str) -> UpstreamError:
    return UpstreamError(f"engine {backend} sent {what}", code="malformed_stream")


def incomplete_stream(backend: str) -> UpstreamError:
    return UpstreamError(f"engine {backend} ended the stream before it finished", code="incomplete_stream")


def line_too_long(backend: str, max_bytes: int) -> UpstreamError:
    message = f"engine {backend} sent a stream line longer than {max_bytes} bytes"
    return UpstreamError(message, code="stream_line_too_long")


async def read_line(response: aiohttp.ClientResponse, backend: str, max_bytes: int) -> bytes:
    """The next line of a streamed body, newline included; b"" at its end. Memory stays bounded:
    a line longer than ``max_bytes`` is an error once ``max_bytes`` have been read, and aiohttp
    stops reading the socket while its own buffer is full."""
    try:
        line = await response.content.readuntil(b"\n", max_size=max_bytes)
    except LineTooLong:
        raise line_too_long(backend, max_bytes) from None
    if line and line[-1:] != b"\n":
        raise incomplete_stream(backend)  # the body ended in the middle of a line
    return line


class SseParser:
    """The SSE framing of an engine stream, parsed from blocks of bytes as they arrive.

    What the gateway accepts of the SSE format: one ``data:`` line per event (what every
    OpenAI-compatible engine sends); blank lines; comments (``:``, e.g. llama-server's keep-alive
    pings), ``id:`` and ``retry:``, which are ignored; ``event: message``, the default type. An
    ``event: error`` is the engine's error. Any other event type or field, a line longer than
    ``max_line_bytes`` (newline included) or a body that ends mid-line is a stream the gateway does
    not understand: an ``InferLabError``, never forwarded.

    ``feed`` returns the ``data:`` payloads of the complete lines of a block, in order; when a line
    breaks the stream, the payloads before it are returned and the error is kept in ``failure``,
    so the caller forwards what came before it, then raises it. Memory stays bounded: only a
    partial line is kept between blocks, and never one longer than the limit.
    """

    __slots__ = ("_backend", "_event", "_max_line_bytes", "_pending", "failure")

    def __init__(self, backend: str, max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES) -> None:
        self._backend = backend
        self._max_line_bytes = max_line_bytes
        self._pending = b""
        self._event = b""
        self.failure: InferLabError | None = None

    def feed(self, block: bytes) -> list[bytes]:
        payloads: list[bytes] = []
        if self.failure is not None:
            return payloads
        if self._pending:
            block = self._pending + block
        lines = block.split(b"\n")
        self._pending = lines.pop()  # the part after the last newline: b"" when the block ended a line
        limit = self._max_line_bytes  # a line without its newline must be shorter than the limit
        try:
            for line in lines:
                if len(line) >= limit:
                    raise line_too_long(self._backend, limit)
                if line[:5] == b"data:":
                    data = line[5:].strip()
                    if self._event:
                        _named_event(self._backend, self._event, data)
                    if data:
                        payloads.append(data)
                else:
                    self._field(line.strip())
            if len(self._pending) >= limit:
                raise line_too_long(self._backend, limit)
        except InferLabError as exc:
            self.failure = exc
        return payloads

    @property
    def between_events(self) -> bool:
        """Nothing is pending: no partial line, no event type waiting for its data."""
        return not self._pending and not self._event and self.failure is None

    def _field(self, field: bytes) -> None:
        if not field:
            if self._event == b"error":
                raise stream_error(self._backend, "an error event without data")
            self._event = b""  # a blank line ends the event
        elif field[:6] == b"event:":
            name = field[6:].strip()
            self._event = b"" if name == b"message" else name
        elif field[:1] != b":" and field.partition(b":")[0] not in (b"id", b"retry"):
            raise malformed_stream(self._backend, "an unexpected line in its event stream")

    def end(self) -> None:
        """The body ended: raise if it ended in the middle of a line (or a failure is pending)."""
        if self.failure is not None:
            raise self.failure
        if self._pending:
            raise incomplete_stream(self._backend)


async def sse_data_lines(
    response: aiohttp.ClientResponse, backend: str, max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES
) -> AsyncIterator[bytes]:
    """Yield the payload of each ``data:`` line of a server-sent-event stream, as it arrives
    (``SseParser`` says what is accepted); a broken stream raises where it broke."""
    parser = SseParser(backend, max_line_bytes)
    while block := await response.content.readany():
        for data in parser.feed(block):
            yield data
        if parser.failure is not None:
            raise parser.failure
    parser.end()


def _named_event(backend: str, event: bytes, data: bytes) -> None:
    if event != b"error":
        raise malformed_stream(backend, "an event of a type the gateway does not know")
    try:
        payload: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = data.decode("utf-8", "replace")
    raise stream_error(backend, payload)


async def ndjson_lines(
    response: aiohttp.ClientResponse, backend: str, max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES
) -> AsyncIterator[dict[str, Any]]:
    """Yield each JSON object of a newline-delimited JSON stream; anything else is an error."""
    while True:
        line = await read_line(response, backend, max_line_bytes)
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise malformed_stream(backend, "a stream line that is not JSON") from None
        if not isinstance(event, dict):
            raise malformed_stream(backend, "a stream line that is not a JSON object")
        yield event
