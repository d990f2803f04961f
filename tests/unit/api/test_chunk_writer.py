"""The stream writer: events reach the client as valid chunked HTTP, a client that stops reading
holds the writer back (bounded memory), and a client that went away is a ``ConnectionResetError``;
a held last event goes out with the end of the body, after the middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.api.sse import DONE, ChunkWriter, SseResponse

EVENT = b"data: " + b'{"choices":[{"delta":{"content":"' + b"x" * 1000 + b'"}}]}' + b"\n\n"
EVENTS = 30_000  # about 30 MB: far more than loopback socket buffers (several MB) and the high water


class Progress:
    def __init__(self) -> None:
        self.written = 0
        self.direct = False
        self.failure: BaseException | None = None
        self.done = asyncio.Event()


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Progress]]:
    progress = Progress()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        writer = ChunkWriter(request, response)
        try:
            await writer.write(EVENT)
            progress.direct = writer.direct
            for _ in range(EVENTS - 1):
                if writer.send(EVENT):
                    await writer.drain()
                progress.written += 1
            await writer.write(DONE)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as exc:
            progress.failure = exc
            raise
        finally:
            progress.done.set()
        return response

    async def closing(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        writer = ChunkWriter(request, response)
        await writer.write(EVENT)
        assert request.transport is not None
        request.transport.close()  # the connection is on its way out: the next event must not vanish
        try:
            writer.send(EVENT)
        except ConnectionResetError as exc:
            progress.failure = exc
        progress.done.set()
        return response

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/closing", closing)
    async with TestServer(app, handler_cancellation=True) as test_server:  # as the gateway serves
        yield test_server, progress


async def test_events_arrive_as_valid_chunked_http(server: tuple[TestServer, Progress]) -> None:
    test_server, progress = server
    async with aiohttp.ClientSession() as session, session.get(test_server.make_url("/stream")) as response:
        body = await response.read()  # aiohttp's parser checks the chunked framing
    assert progress.direct  # after the first event, writes bypass aiohttp's writer
    assert body == EVENT * EVENTS + DONE


async def test_a_client_that_stops_reading_holds_the_writer_back(server: tuple[TestServer, Progress]) -> None:
    test_server, progress = server
    reader, writer = await asyncio.open_connection(test_server.host, test_server.port)
    writer.transport.pause_reading()  # reads nothing: the kernel's buffers fill, then the gateway's
    writer.write(f"GET /stream HTTP/1.1\r\nHost: {test_server.host}\r\n\r\n".encode())
    await asyncio.sleep(1.0)
    stalled_at = progress.written
    assert stalled_at < EVENTS // 2  # waiting for the client, not buffering the whole stream
    await asyncio.sleep(0.3)
    assert progress.written == stalled_at  # and still waiting
    writer.transport.resume_reading()
    received = 0
    while not progress.done.is_set() or received == 0:
        received += len(await reader.read(1 << 20))
    writer.close()
    assert progress.failure is None and progress.written == EVENTS - 1


async def test_a_client_that_went_away_is_a_connection_reset(server: tuple[TestServer, Progress]) -> None:
    test_server, progress = server
    reader, writer = await asyncio.open_connection(test_server.host, test_server.port)
    writer.write(f"GET /stream HTTP/1.1\r\nHost: {test_server.host}\r\n\r\n".encode())
    await reader.read(4096)  # the head and the first events are on their way
    writer.transport.abort()
    await asyncio.wait_for(progress.done.wait(), 10)
    # waiting for the client: the wait is cancelled (handler cancellation, the gateway's set-up)
    assert isinstance(progress.failure, (asyncio.CancelledError, ConnectionResetError)), repr(progress.failure)
    assert progress.written < EVENTS - 1


async def test_an_event_for_a_closing_connection_is_a_connection_reset(server: tuple[TestServer, Progress]) -> None:
    test_server, progress = server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(test_server.make_url("/closing")) as response:
                await response.read()
    await asyncio.wait_for(progress.done.wait(), 10)
    assert isinstance(progress.failure, ConnectionResetError)


async def test_a_held_done_goes_out_only_once_the_middleware_returned() -> None:
    """``SseResponse``: the client sees ``[DONE]`` and the end of the body after the handler's
    middleware is done with the request, not when the handler returns."""
    middleware_may_finish = asyncio.Event()

    @web.middleware
    async def bookkeeping(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        await middleware_may_finish.wait()  # the call's clean-ups, its metrics and access line
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        response = SseResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await ChunkWriter(request, response).write(EVENT)
        response.end_with(DONE)
        return response

    app = web.Application(middlewares=[bookkeeping])
    app.router.add_get("/", stream)
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session, session.get(server.make_url("/")) as response:
            assert await response.content.readuntil(b"\n\n") == EVENT
            with pytest.raises(TimeoutError):  # the handler returned; the middleware has not
                await asyncio.wait_for(response.content.readuntil(b"\n\n"), 0.3)
            middleware_may_finish.set()
            assert await asyncio.wait_for(response.content.read(), 5) == DONE  # and then the body ends
    finally:
        await server.close()
