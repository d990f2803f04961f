"""The gateway's HTTP/1.1 client to OpenAI-compatible engines: lean, pooled, bounded.

Every inference request makes one call to an engine, so this client is on the hot path; a general
client (aiohttp's) spends a few hundred microseconds of CPU per request on features engine traffic
does not use (cookies, redirects, proxies, tracing, multipart, a timer per read). This one sends a
request in one write and parses the answer with ``httptools`` (llhttp, in C) straight into a list
of body blocks that ``take`` hands out (``arrival()`` says when there are more), or that a
receiver takes as they are read (``push``; a pushed stream's reads are parsed from the event
loop's queue, in turn with the tasks woken before them).

What it does: keep-alive connection pools per origin (``max_connections`` in all; idle ones closed
after ``keepalive_s``); TLS for ``https://`` engines; ``Content-Length`` and chunked bodies, and
bodies ended by the engine closing the connection; back-pressure (the socket stops being read
while more than ``HIGH_WATER`` bytes wait for the reader); a bounded connect (``connect_timeout_s``)
and a bound on silence mid-answer (``read_timeout_s``), enforced by one sweep timer for all
connections rather than a timer per read. A request on a kept-alive connection that the engine
had closed meanwhile (nothing of the answer received) is sent once more on a new connection. A
reader done before the body's end (a stream's ``[DONE]`` read before its chunked terminator arrived,
``release(at_end=True)``) leaves the connection to read that end by itself, discarding it, and join
the idle ones then, instead of being closed: with the terminator a segment behind ``[DONE]``, about
one stream in ten would otherwise open a new connection for the next request.
What it does not: redirects, proxies, cookies, compression (it asks for none), ``Expect``.

Failures are ``EngineConnectionError`` (refused, reset, closed mid-answer, malformed HTTP) and
``TimeoutError``; ``backends/http.translate_client_error`` turns both into InferLab errors.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Self
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # bytes buffered for a reader before the socket is paused
FINISH_WITHIN_S = 2.0  # a released answer's end, read without a reader: closed if not there by then
FINISH_AT_MOST_BYTES = 64 * 1024  # and closed if more than this arrives before it
MAX_KNOWN_URLS = 256  # split URLs kept: an engine has a few (chat, completions, embeddings, health)
_Origin = tuple[str, str, int]  # scheme, host, port


class EngineConnectionError(ConnectionError):
    """The engine could not be reached, closed the connection early, or spoke broken HTTP."""


class _Connection(asyncio.Protocol):
    """One socket to an engine and the answer being read on it."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.requests = 0  # requests sent on it: after the first, the engine may have closed it idle
        self.close_after = False  # the request asked the engine to close it after the answer
        self.last_active = time.monotonic()
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)  # None once closed
        self._queued = 0  # reads waiting in the event loop's queue (``pushing``): parsed there, in order
        self._loop = asyncio.get_running_loop()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.failure: BaseException | None = None
        self._blocks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._received_any = False
        self._delimited = True  # the body's end is known (a length, chunks); else the engine closes
        self.receiver: Callable[[bytes], bool] | None = None  # takes body blocks as they arrive (``push``)
        self.pushing = False  # ``receiver`` is a pushed stream's: its reads wait their turn (``data_received``)
        self._receiver_if_ok: Callable[[bytes], bool] | None = None  # the receiver from the start, on a 200
        self._on_finished: Callable[[_Connection], None] | None = None  # ``finish_then``: the answer's end came
        self._finish_timer: asyncio.TimerHandle | None = None
        self._discarded = 0

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request is one write: send it now

    def data_received(self, data: bytes) -> None:
        """A read of a pushed stream (``EngineResponse.push``) is parsed, and its chunks sent on,
        from the event loop's queue, in turn with the tasks woken before it, instead of here,
        ahead of them all: a burst of tokens for many streams (an engine's batch step) would
        otherwise hold back every request that arrived meanwhile — their way in is task steps —
        and the first events relayed after them. Reads keep their order; so does the connection's
        end (``connection_lost``)."""
        if self._queued or self.pushing:
            self._queued += 1
            self._loop.call_soon(self._queued_read, data)
            return
        self._read(data)

    def _queued_read(self, data: bytes) -> None:
        self._queued -= 1
        if not self.closed:  # aborted meanwhile (its reader gone): read nothing more, as a closed socket would
            self._read(data)

    def _read(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        self._received_any = True
        parser = self._parser
        if parser is None:  # closed: nothing more is read
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(EngineConnectionError(f"malformed HTTP from the engine: {exc}"))
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._queued:  # after the reads still queued
            self._queued += 1
            self._loop.call_soon(self._queued_loss, exc)
            return
        self.closed = True
        try:
            self._lost(exc)
        finally:
            self._parser = None  # it holds this connection's callbacks: no cycle left for the collector

    def _queued_loss(self, exc: Exception | None) -> None:
        self._queued -= 1
        self.connection_lost(exc)

    def _lost(self, exc: Exception | None) -> None:
        if self._on_finished is not None:  # closed while its end was being read without a reader
            self._finished()
            return
        if self.complete:
            return
        if exc is None and self.headers_done and not self._delimited:
            self.on_message_complete()  # a body without a length ends when the engine closes
            return
        detail = f" ({type(exc).__name__})" if exc is not None else ""
        self._fail(EngineConnectionError(f"the engine closed the connection before the answer ended{detail}"))

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_status(self, status: bytes) -> None:
        self.reason = status.decode("latin-1")

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is the one calling
        self.status = parser.get_status_code()
        if self.status < 200:
            return  # an interim answer (1xx): its headers are not the answer's
        self.keep_alive = parser.should_keep_alive()
        self._delimited = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "")
        self.headers_done = True
        if self._receiver_if_ok is not None:
            if self.status == 200:
                self.receiver = self._receiver_if_ok
            self._receiver_if_ok = None
        self._wake()

    def on_body(self, body: bytes) -> None:
        receiver = self.receiver
        if receiver is not None and not self._blocks and receiver(body):
            return
        self._blocks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER:
            self._pause()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status < 200:
            return
        self.complete = True
        self._wake()
        if self._on_finished is not None:
            self._finished()

    # -- the reader's side -----------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_headers(self) -> None:
        while not self.headers_done:
            if self.failure is not None:
                raise self.failure
            await self.arrival()

    def take(self) -> bytes | None:
        """The body bytes received since the last call; b"" at the end; None: nothing yet (await
        ``arrival()``). The per-chunk path: no coroutine unless there is something to wait for."""
        blocks = self._blocks
        if not blocks:
            if self.complete:
                return b""
            if self.failure is not None:
                raise self.failure
            return None
        data = blocks.popleft() if len(blocks) == 1 else b"".join(blocks)
        blocks.clear()
        self._buffered = 0
        self.resume()
        return data

    def arrival(self) -> asyncio.Future[None]:
        """A future done when more of the answer arrived (or it ended, or failed)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def hold(self) -> None:
        """Stop reading the socket (the reader's consumer is behind) until ``resume``."""
        self._pause()
        self._wake()

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Read the socket again, unless more than ``HIGH_WATER`` bytes still wait for the reader."""
        if self._paused and self._buffered <= HIGH_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def send(self, head: bytes, body: bytes, *, close: bool,
             receiver: Callable[[bytes], bool] | None = None) -> None:
        """Write a request; ``receiver``: a 200 answer's body blocks go to it from the first (as
        ``push`` would hand them), before the reader has seen the answer's head."""
        assert self.transport is not None
        if self.requests:
            self._parser = httptools.HttpResponseParser(self)
            self._reset()
        self.requests += 1
        self.close_after = close
        self._receiver_if_ok = receiver
        self.last_active = time.monotonic()
        self.transport.write(head + body if len(body) < 16384 else head)
        if len(body) >= 16384:
            self.transport.write(body)

    @property
    def stale_before_answer(self) -> bool:
        """A kept-alive connection failed before any byte of the answer: the engine had closed it."""
        return self.requests > 1 and self.failure is not None and not self._received_any

    @property
    def reusable(self) -> bool:
        return (self.complete and self.keep_alive and not self.close_after and not self.closed and not self._blocks
                and not self._queued)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def retire(self) -> None:
        """Close it for good, its reader done with it. The failure it held goes too: raised to the
        reader, it has the reader's frames, which hold this connection, in its traceback — kept
        here, a reference cycle (and the request's whole call waiting for the garbage collector)."""
        self.abort()
        self.failure = None

    @property
    def may_finish(self) -> bool:
        """Whether the answer could still end cleanly with no reader: a delimited body on a kept-alive
        connection, nothing failed."""
        return (self.headers_done and self.keep_alive and self._delimited and not self.close_after
                and not self.closed and self.failure is None)

    def finish_then(self, finished: Callable[[_Connection], None]) -> None:
        """The reader is done before the body's end: read the rest without it, discarding at most
        ``FINISH_AT_MOST_BYTES``, then ``finished(self)`` — when the end came, when the connection
        closed, or after ``FINISH_WITHIN_S`` (closed then). ``reusable`` tells which."""
        self._on_finished = finished
        self._blocks.clear()
        self._buffered = 0
        self.receiver = self._discard
        self.resume()
        self._finish_timer = asyncio.get_running_loop().call_later(FINISH_WITHIN_S, self._give_up)

    def _discard(self, body: bytes) -> bool:
        self._discarded += len(body)
        if self._discarded > FINISH_AT_MOST_BYTES:
            self._give_up()
        return True

    def _give_up(self) -> None:
        self.abort()
        if self._on_finished is not None:
            self._finished()

    def _finished(self) -> None:
        finished, self._on_finished = self._on_finished, None
        if self._finish_timer is not None:
            self._finish_timer.cancel()
            self._finish_timer = None
        self.receiver = None
        if finished is not None:
            finished(self)


class EngineResponse:
    """An engine's answer: status and headers at once, the body as it arrives. ``release()`` gives
    the connection back (closed unless the body was read to its end); idempotent."""

    __slots__ = ("_client", "_connection", "headers", "reason", "status")

    def __init__(self, client: EngineClient, connection: _Connection) -> None:
        self._client = client
        self._connection: _Connection | None = connection
        self.status = connection.status
        self.reason = connection.reason
        self.headers: Mapping[str, str] = _Headers(connection.headers)

    async def readany(self) -> bytes:
        while (data := self.take()) is None:
            await self.arrival()
        return data

    def take(self) -> bytes | None:
        """The body bytes that arrived since the last call (the connection is given back at the
        end, b""); None: nothing yet, await ``arrival()``."""
        connection = self._connection
        if connection is None:
            return b""
        data = connection.take()
        if data == b"":
            self.release()
        return data

    def push(self, receiver: Callable[[bytes], bool] | None) -> None:
        """Hand each body block to ``receiver`` as it arrives, while nothing is queued; a block it
        answers False for is queued for ``take`` as usual. None: queue every block again. The reads
        are parsed in the event loop's queue (``_Connection.data_received``), in turn with the
        tasks woken before them."""
        connection = self._connection
        if connection is not None:
            connection.receiver = receiver
            connection.pushing = receiver is not None

    def hold(self) -> None:
        """Stop reading from the engine (the consumer is behind) and wake ``arrival``; ``resume``."""
        if self._connection is not None:
            self._connection.hold()

    def resume(self) -> None:
        if self._connection is not None:
            self._connection.resume()

    def arrival(self) -> asyncio.Future[None]:
        connection = self._connection
        if connection is None:  # released: nothing more will arrive
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return connection.arrival()

    async def read(self, limit: int | None = None) -> bytes:
        """The body (its first ``limit`` bytes: the rest is not read and the connection is closed)."""
        parts: list[bytes] = []
        size = 0
        while (limit is None or size < limit) and (block := await self.readany()):
            parts.append(block)
            size += len(block)
        data = b"".join(parts)
        if limit is not None and len(data) > limit:
            data = data[:limit]
        self.release()
        return data

    def release(self, *, at_end: bool = False) -> None:
        """``at_end``: the reader has all it wants (a stream's ``[DONE]``), the rest of the body may be
        read and dropped so that the connection is kept; else an unfinished answer closes it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.receiver = None
            connection.pushing = False  # what is read after (``finish_then``) is no stream's: read at once
            self._client.give_back(connection, at_end=at_end)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()


class _Headers(dict[str, str]):
    """Response headers looked up in any case (stored lower-case)."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class EngineClient:
    """Pooled connections to engines. Open and close it inside the event loop."""

    def __init__(
        self, *, max_connections: int = 1024, connect_timeout_s: float = 5.0, read_timeout_s: float = 300.0,
        keepalive_s: float = 15.0, ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max = max_connections
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._opening = 0  # connections being opened: they count against the bound too
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._known_urls: dict[str, tuple[str, str, int, str]] = {}  # the engines' few URLs, split once

    async def request(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
        receiver: Callable[[bytes], bool] | None = None,
    ) -> EngineResponse:
        """Send a request and wait for the answer's status and headers. ``receiver``: a 200
        answer's body blocks go to it as they arrive (``EngineResponse.push``) from the first one,
        which may come before this returns."""
        parts = self._known_urls.get(url)
        if parts is None:
            parts = _split(url)
            if len(self._known_urls) < MAX_KNOWN_URLS:
                self._known_urls[url] = parts
        scheme, host, port, target = parts
        origin = (scheme, host, port)
        head, close = _head(method, target, host, port, body, headers)
        connection = await self._checkout(origin)
        try:
            connection.send(head, body, close=close, receiver=receiver)
            await connection.wait_headers()
        except EngineConnectionError:
            if not connection.stale_before_answer:
                self._discard(connection)
                raise
            self._discard(connection)  # a kept-alive connection the engine had closed: once more, anew
            connection = await self._checkout(origin, fresh=True)
            try:
                connection.send(head, body, close=close, receiver=receiver)
                await connection.wait_headers()
            except BaseException:
                self._discard(connection)
                raise
        except BaseException:
            self._discard(connection)
            raise
        return EngineResponse(self, connection)

    async def _checkout(self, origin: _Origin, *, fresh: bool = False) -> _Connection:
        """A kept-alive connection to ``origin`` when one is idle (unless ``fresh``), else a new one
        once the bound allows (an idle connection elsewhere is closed to make room)."""
        while True:
            if self._closed:
                raise EngineConnectionError("the engine client is closed")
            idle = self._idle.get(origin)
            now = time.monotonic()
            while idle and not fresh:
                connection = idle.pop()
                if not connection.closed and now - connection.last_active < self._keepalive_s:
                    self._busy.add(connection)
                    return connection
                connection.abort()
            if self._opening + len(self._busy) + self._idle_count() < self._max or self._close_one_idle():
                break
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            await waiter
        self._opening += 1
        try:
            connection = await self._connect(origin)
        finally:
            self._opening -= 1
            self._wake_slot_waiter()  # a failed connect frees its slot (a waiter re-checks either way)
        self._busy.add(connection)
        self._ensure_sweeper()
        return connection

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = (self._ssl or ssl.create_default_context()) if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin), host, port, ssl=context, server_hostname=host if context else None
                )
        except OSError as exc:
            raise EngineConnectionError(f"cannot connect to the engine ({type(exc).__name__})") from exc
        return connection

    def give_back(self, connection: _Connection, *, at_end: bool = False) -> None:
        """A connection its reader is done with: kept when its answer ended cleanly (or, ``at_end``,
        once it has: still counted busy meanwhile), else closed."""
        if at_end and not connection.complete and connection.may_finish and not self._closed:
            connection.finish_then(self.give_back)
            return
        self._busy.discard(connection)
        if connection.reusable and not self._closed:
            connection.last_active = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
        else:
            connection.retire()
        self._wake_slot_waiter()

    def _discard(self, connection: _Connection) -> None:
        self._busy.discard(connection)
        connection.retire()
        self._wake_slot_waiter()

    def _wake_slot_waiter(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _idle_count(self) -> int:
        return sum(len(connections) for connections in self._idle.values())

    def _close_one_idle(self) -> bool:
        for connections in self._idle.values():
            if connections:
                connections.pop(0).abort()
                return True
        return False

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None and not self._closed:
            period = min(self._read_timeout_s, self._keepalive_s) / 2
            self._sweeper = asyncio.get_running_loop().call_later(period, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections past their keep-alive, and abort answers silent too long."""
        self._sweeper = None
        now = time.monotonic()
        for origin, connections in list(self._idle.items()):
            alive = [c for c in connections if not c.closed and now - c.last_active < self._keepalive_s]
            for connection in connections:
                if connection not in alive:
                    connection.abort()
            if alive:
                self._idle[origin] = alive
            else:
                del self._idle[origin]
        for connection in list(self._busy):
            if not connection.complete and now - connection.last_active > self._read_timeout_s:
                connection._fail(TimeoutError(f"the engine sent nothing for {self._read_timeout_s:g}s"))
                connection.abort()
        if self._busy or self._idle:
            self._ensure_sweeper()

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()
        self._idle.clear()
        for connection in list(self._busy):
            connection.abort()
        self._busy.clear()
        for waiter in self._slot_waiters:
            if not waiter.done():
                waiter.set_exception(EngineConnectionError("the engine client is closed"))


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineConnectionError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, parts.hostname, port, target


def _head(
    method: str, target: str, host: str, port: int, body: bytes, headers: Mapping[str, str] | None
) -> tuple[bytes, bool]:
    """The request line and headers, and whether they ask the engine to close the connection."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}", f"Content-Length: {len(body)}"]
    close = False
    if headers:
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
            close = close or (name.lower() == "connection" and value.lower() == "close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1"), close
