"""The engine client against raw TCP servers that send exactly chosen bytes: body framings, keep-alive
reuse, an engine that closed a kept-alive connection, early closes, broken HTTP, back-pressure,
silence, refusal and the connection bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from inferlab.backends import engine_client
from inferlab.backends.engine_client import HIGH_WATER, EngineClient, EngineConnectionError, EngineResponse

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server running ``handler`` per connection; yields its URL and a list that counts connections."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return await reader.readexactly(length)


def answer(body: bytes, *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        body = await read_request(reader)
        writer.write(answer(b"echo:" + body))
        await writer.drain()


async def test_a_kept_alive_connection_is_reused() -> None:
    client = EngineClient()
    async with raw_server(keep_answering) as (url, connections):
        for i in range(3):
            async with await client.request("POST", url + "/x", b"%d" % i) as response:
                assert response.status == 200 and await response.read() == b"echo:%d" % i
    await client.close()
    assert len(connections) == 1


async def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Engine: Yes\r\n\r\n")
        for part in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")

    client = EngineClient()
    async with raw_server(chunked) as (url, _):
        response = await client.request("POST", url + "/s", b"{}")
        assert response.headers.get("x-engine") == "Yes" and response.headers["X-ENGINE"] == "Yes"
        blocks = []
        while block := await response.readany():
            blocks.append(block)
        assert b"".join(blocks) == b"data: 1\n\ndata: 2\n\n"
    async with raw_server(until_close) as (url, _):
        response = await client.request("GET", url + "/c")
        assert await response.read() == b"part one, part two"
    await client.close()


async def test_an_engine_that_closed_a_kept_alive_connection_gets_the_request_again_anew() -> None:
    served: list[bytes] = []

    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await read_request(reader))
        writer.write(answer(b"ok"))
        await writer.drain()
        # keep-alive was promised, but the engine closes it as soon as it is idle

    client = EngineClient()
    async with raw_server(answer_once_then_close) as (url, connections):
        assert await (await client.request("POST", url, b"first")).read() == b"ok"
        await asyncio.sleep(0.05)  # the engine has closed it by now; the client may not have noticed
        assert await (await client.request("POST", url, b"second")).read() == b"ok"
    await client.close()
    assert served == [b"first", b"second"] and len(connections) == 2


async def test_an_answer_cut_short_is_an_error_not_a_short_body() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    client = EngineClient()
    async with raw_server(cut) as (url, _):
        response = await client.request("POST", url, b"{}")
        with pytest.raises(EngineConnectionError):
            await response.read()
    await client.close()


async def test_broken_http_is_an_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPEAKING NONSENSE\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    client = EngineClient()
    async with raw_server(garbage) as (url, _):
        with pytest.raises(EngineConnectionError, match="malformed HTTP"):
            await client.request("POST", url, b"{}")
    await client.close()


async def test_a_refused_connection_is_an_error() -> None:
    async with raw_server(keep_answering) as (url, _):
        pass  # closed: nothing listens on its port any more
    client = EngineClient(connect_timeout_s=1)
    with pytest.raises(EngineConnectionError, match="cannot connect"):
        await client.request("POST", url, b"{}")
    await client.close()


async def test_an_engine_silent_past_the_read_timeout_is_abandoned() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    client = EngineClient(read_timeout_s=0.2)
    async with raw_server(silent) as (url, _):
        response = await client.request("POST", url, b"{}")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await response.readany()
    await client.close()


async def test_a_reader_that_falls_behind_pauses_the_socket() -> None:
    sent = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        total = 128 * HIGH_WATER  # 32 MiB: more than the kernel's socket buffers hold
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()
        sent.set()

    client = EngineClient()
    async with raw_server(flood) as (url, _):
        response = await client.request("POST", url, b"{}")
        await asyncio.sleep(0.3)  # the reader reads nothing meanwhile
        assert not sent.is_set()  # the engine is held back: the client stopped reading its socket
        assert len(await response.read()) == 128 * HIGH_WATER
    await client.close()


async def test_requests_wait_for_a_connection_at_the_bound() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await release.wait()
            writer.write(answer(b"ok"))
            await writer.drain()

    client = EngineClient(max_connections=2)
    async with raw_server(slow) as (url, connections):
        calls = [asyncio.ensure_future(client.request("POST", url, b"{}")) for _ in range(3)]
        await asyncio.sleep(0.2)
        assert len(connections) == 2 and not any(call.done() for call in calls)
        release.set()
        for call in calls:
            assert await (await call).read() == b"ok"
    await client.close()
    assert len(connections) == 2


async def test_a_connection_asked_to_close_is_not_reused() -> None:
    client = EngineClient()
    async with raw_server(keep_answering) as (url, connections):
        for _ in range(2):
            response = await client.request("POST", url, b"{}", {"Connection": "close"})
            assert await response.read() == b"echo:{}"
    await client.close()
    assert len(connections) == 2


async def test_header_injection_is_refused() -> None:
    client = EngineClient()
    with pytest.raises(ValueError, match="line break"):
        await client.request("POST", "http://127.0.0.1:9/", b"", {"X-Id": "a\r\nEvil: 1"})
    await client.close()


def chunked_sse_answer(*events: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)


async def read_to_done(response: EngineResponse) -> bytes:
    """What a stream reader does: read until ``[DONE]``, then let go before the body's end."""
    seen = b""
    while b"[DONE]" not in seen:
        block = await response.readany()
        assert block, "the body ended before [DONE]"
        seen += block
    response.release(at_end=True)
    return seen


@pytest.mark.parametrize("terminator_after_s", [0.0, 0.05])
async def test_a_stream_let_go_at_done_keeps_its_connection_for_the_next_request(terminator_after_s: float) -> None:
    """The chunked terminator a segment (or 50 ms) behind ``[DONE]``: the connection waits for it by
    itself, then serves the next request — one connection for three streams."""
    async def stream_then_end_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(chunked_sse_answer(b"data: {}\n\n", b"data: [DONE]\n\n"))
            await writer.drain()
            await asyncio.sleep(terminator_after_s)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    client = EngineClient()
    async with raw_server(stream_then_end_late) as (url, connections):
        for _ in range(3):
            assert b"[DONE]" in await read_to_done(await client.request("POST", url, b"{}"))
            await asyncio.sleep(terminator_after_s + 0.02)  # the end arrives, read by nobody
        assert len(connections) == 1 and client._busy == set()
    await client.close()


@pytest.mark.parametrize("after_done", ["nothing", "too much"])
async def test_an_end_that_does_not_come_closes_the_connection(after_done: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No terminator within the bound, or more than the bound of bytes instead: closed, not kept, and
    the next request gets a new connection."""
    monkeypatch.setattr(engine_client, "FINISH_WITHIN_S", 0.1)

    async def never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(chunked_sse_answer(b"data: [DONE]\n\n"))
            if after_done == "too much":
                filler = b"x" * 8192
                for _ in range(engine_client.FINISH_AT_MOST_BYTES // len(filler) + 2):
                    writer.write(b"%x\r\n%s\r\n" % (len(filler), filler))
            await writer.drain()

    client = EngineClient()
    async with raw_server(never_ends) as (url, connections):
        for _ in range(2):
            response = await client.request("POST", url, b"{}")
            await read_to_done(response)
            await asyncio.sleep(0.3)
        assert len(connections) == 2 and client._busy == set()
    await client.close()


async def test_an_answer_let_go_early_without_at_end_is_still_closed() -> None:
    """A reader that stops mid-stream (a client gone) closes the connection at once: the engine must
    stop generating, not be read to its end."""
    async def slow_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(chunked_sse_answer(b"data: {}\n\n"))
        await writer.drain()
        await reader.read()  # until the gateway closes it

    client = EngineClient()
    async with raw_server(slow_stream) as (url, _):
        response = await client.request("POST", url, b"{}")
        assert await response.readany()
        response.release()
        assert client._busy == set() and client._idle == {}
    await client.close()


def head_then_wait(head: bytes) -> Handler:
    """An engine that answers each request with ``head`` only, then waits: the test feeds the body."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(5)

    return handler


async def pushed(client: EngineClient, url: str) -> tuple[EngineResponse, engine_client._Connection, list[object]]:
    """An answer whose body blocks are pushed into the list returned with it, and its connection."""
    response = await client.request("POST", url + "/x", b"{}")
    received: list[object] = []
    response.push(lambda block: received.append(block) is None)
    connection = response._connection
    assert connection is not None
    return response, connection, received


async def test_pushed_reads_wait_their_turn_and_the_connection_end_waits_behind_them() -> None:
    """A pushed stream's reads are parsed from the event loop's queue, after what was queued before
    them (a request's way in is such task steps), not inside the I/O callback; the connection's end
    comes after them, so a body the engine's close ends is complete, not cut short."""
    client = EngineClient()
    # no length, not chunked: the engine's close ends the body
    async with raw_server(head_then_wait(b"HTTP/1.1 200 OK\r\n\r\n")) as (url, _):
        response, connection, order = await pushed(client, url)
        asyncio.get_running_loop().call_soon(order.append, "queued before the reads")
        connection.data_received(b"data: 1\n\n")  # as the event loop's I/O phase would call them
        connection.data_received(b"data: 2\n\n")
        connection.connection_lost(None)
        assert order == [] and not connection.closed  # nothing parsed in the I/O callback
        await asyncio.sleep(0)
        assert order == ["queued before the reads", b"data: 1\n\n", b"data: 2\n\n"]
        assert connection.closed and response.take() == b""  # the end, after the body, not a failure
    await client.close()


async def test_pushed_reads_still_queued_when_the_connection_is_aborted_are_dropped() -> None:
    """A reader that lets go of its answer (a client gone) closes the connection: reads queued before
    that are not parsed into it afterwards, as a closed socket reads nothing more."""
    client = EngineClient()
    async with raw_server(head_then_wait(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) as (url, _):
        response, connection, received = await pushed(client, url)
        connection.data_received(b"9\r\ndata: 1\n\n\r\n")
        response.release()  # not at its end: the connection is closed, not kept
        await asyncio.sleep(0)
        assert received == [] and connection.closed and not connection.reusable
        assert not connection._blocks  # nothing parsed into it after the close
    await client.close()
