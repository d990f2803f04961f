"""The gateway on a real socket, built the way ``inferlab serve`` builds it, and a raw HTTP/1.1
client that can misbehave: send half a head, trickle a body, or just sit there."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.http_server import GatewayRunner
from inferlab.app import create_app
from inferlab.config import Settings
from inferlab.testing.gateway_process import GatewayProcess, http_get

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[int]:
    """The gateway listening on 127.0.0.1, on a port of its own; yields the port."""
    app = await create_app(settings)
    runner = GatewayRunner(app, settings.server, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_process(config: dict[str, Any]) -> Iterator[GatewayProcess]:
    """``inferlab serve`` as a child process (uvloop when installed), once it answers /health; its
    model points nowhere, so it never becomes ready, which these tests do not need."""
    gateway = GatewayProcess(
        {"models": [{"name": "m", "backend": "openai", "url": "http://127.0.0.1:9/v1"}], **config}
    ).start(wait_ready=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(gateway.url + "/health", timeout=1.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("inferlab serve did not come up:\n" + gateway.logs()[-2000:])
            time.sleep(0.2)
        yield gateway
    finally:
        assert gateway.stop() == 0


async def connect(port: int) -> Connection:
    return await asyncio.open_connection("127.0.0.1", port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def head(method: str, path: str, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body: (status, lower-cased headers, body)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await connect(port)
    try:
        writer.write(data)
        return await read_response(reader)
    finally:
        await close(writer)


def openai_error(body: bytes) -> dict[str, Any]:
    error = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "code", "param"}
    return dict(error)


async def seconds_until_closed(reader: asyncio.StreamReader, limit: float) -> float:
    """How long until the server closes the connection (anything it sends first is skipped);
    ``inf`` when it is still open after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return float("inf")
    except ConnectionError:
        pass
    return loop.time() - started


async def trickle(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    """Write ``data`` one byte every ``interval`` seconds until it is sent or the peer is gone."""
    for byte in data:
        if writer.is_closing():
            return
        writer.write(bytes((byte,)))
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(interval)


def blocking_exchange(port: int, request_head: bytes, body: bytes, timeout: float = 20) -> tuple[int, bytes]:
    """Send a request as fast as the kernel takes it, from a plain blocking socket (no copy of
    ``body`` in this process), then read the answer: (status, body). Run it in a thread."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request_head)
            sock.sendall(memoryview(body))
        except ConnectionError:
            pass  # answered and closed before the whole body was in: what a 413 may do
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed without a complete answer: {received!r}")
            received += data
        raw_head, _, rest = received.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        lengths = [int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")]
        length = lengths[0] if lengths else 0
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        return int(lines[0].split()[1]), rest[:length]
