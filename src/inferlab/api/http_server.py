"""The HTTP server's connection limits, including the one aiohttp lacks: a deadline for the request head.

aiohttp closes a connection that has waited ``keepalive_timeout`` for its next complete request
(counted from the connect or from the previous response: the idle timeout, 3630 s by default);
that is the only bound on a head sent one byte a second, which meanwhile holds a connection and
the task serving it. ``GuardedRequestHandler`` adds ``server.header_timeout_s``, from the first
byte of a head to its end (whichever of the two comes first closes the connection). It costs
nothing when a head arrives in one read, the usual case: the timer is armed only when a read ends
inside a head. The body's deadline is kept where the body is read (``api/body.py``, 408), which
also stops the server from waiting for the rest of it.

A request aiohttp cannot parse (a line or header past its limits, bytes that are not HTTP) is
answered by the protocol itself, before any middleware: ``handle_error`` makes that answer the
same OpenAI-shaped JSON as every other error.

``GatewayRunner`` is ``web.AppRunner`` serving these protocols; ``inferlab serve`` runs it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from inferlab.config import ServerSettings
from inferlab.errors import InferLabError, InvalidRequest

SERVER = "inferlab"  # every answer's Server header: not aiohttp's, which names it and its version


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol, closing a connection whose request head is too slow to arrive."""

    __slots__ = ("_body", "_head_timer", "_header_timeout_s")

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the body of the last request whose head arrived

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        in_body = self._in_body()  # asked before the bytes go in: these may be the body's last ones
        super().data_received(data)
        if self._request_count != heads:  # one or more heads complete
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            messages = self._messages
            self._body = messages[-1][1] if messages else None
        elif data and not in_body and self._head_timer is None and not self._upgraded:
            self._head_timer = self._loop.call_later(self._header_timeout_s, self._head_too_slow)

    def _in_body(self) -> bool:
        body = self._body
        if body is None:
            return False
        if body.is_eof():
            self._body = None
            return False
        return True

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._request_in_progress:  # a head pipelined behind a running request: the idle timer's
            self.force_close()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's own answer to a request it could not parse (a head too long, not HTTP) or to an
        error that got past the middleware: OpenAI-shaped JSON like every other error, instead of
        aiohttp's text page, which echoes the first bytes of the offending line (a header's value: a
        credential, perhaps). A client's malformed request is one log line, not a traceback."""
        if status < 500:
            error = type(exc).__name__ if exc is not None else None
            self.logger.info("malformed request refused", extra={"status": status, "error": error})
        else:
            self.log_exception("Error handling request", exc_info=exc)
        if request.writer.output_size > 0:  # as aiohttp's: the answer has begun, the connection is broken
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        from inferlab.api.middleware import error_response  # here: middleware → body → this module

        response = error_response(refusal_of(status, exc))
        response.force_close()
        return response

    def abandon_body(self) -> None:
        """Do not read the rest of this request's body after the response: close the connection."""
        self._lingering_time = 0.0

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._body = None
        super().connection_lost(exc)


def refusal_of(status: int, exc: BaseException | None) -> InferLabError:
    """What a client is told when aiohttp refuses its request before any handler (never its bytes)."""
    if status >= 500:
        error = InferLabError("The server had an error while processing your request")
    elif isinstance(exc, LineTooLong):
        error = InvalidRequest("The request line or a header is longer than this server accepts",
                               code="request_head_too_large")
    else:
        error = InvalidRequest("The request is not valid HTTP/1.1", code="invalid_http")
    error.status = status
    return error


class GuardedServer(web.Server):
    """aiohttp's connection factory, making ``GuardedRequestHandler`` protocols."""

    def __init__(self, built: web.Server, header_timeout_s: float) -> None:
        super().__init__(
            built.request_handler, request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation, **built._kwargs,
        )
        self._header_timeout_s = header_timeout_s

    def __call__(self) -> RequestHandler:
        timeout = self._header_timeout_s
        return GuardedRequestHandler(self, header_timeout_s=timeout, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` with the ``server.`` connection limits: idle (keep-alive) and head timeouts."""

    __slots__ = ("_header_timeout_s",)

    def __init__(self, app: web.Application, server: ServerSettings, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=server.keepalive_timeout_s, **kwargs)
        self._header_timeout_s = server.header_timeout_s

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self._header_timeout_s)
