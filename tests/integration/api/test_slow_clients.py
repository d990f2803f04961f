"""Slow clients against the real server (the runner ``inferlab serve`` uses, on a real socket): a head
trickled byte by byte is cut at ``server.header_timeout_s``, an idle kept-alive connection at
``server.keepalive_timeout_s``, a trickled body gets 408 at ``server.body_timeout_s`` (a body that
keeps up ``server.body_min_rate_bytes_s`` may take longer), and hundreds of such connections do not
slow down anyone else."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson

from inferlab.config import Settings
from inferlab.testing import EngineSimulator, SimulatorScript

from .harness import (
    close,
    connect,
    head,
    openai_error,
    read_response,
    request,
    running_gateway,
    seconds_until_closed,
    serve_process,
    trickle,
)

CHAT = "/v1/chat/completions"
PARTIAL_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
SLOW_HEADER = b"X-Slow: " + b"a" * 200


def settings(**server: Any) -> Settings:
    return Settings(server=server, features={"metrics": False, "planning_api": False})


async def test_a_trickled_head_is_cut_at_the_header_timeout() -> None:
    async with running_gateway(settings(header_timeout_s=1.0, keepalive_timeout_s=30.0)) as port:
        reader, writer = await connect(port)
        writer.write(PARTIAL_HEAD)
        sender = asyncio.create_task(trickle(writer, SLOW_HEADER, 0.05))
        closed_after = await seconds_until_closed(reader, limit=5.0)
        sender.cancel()
        await close(writer)
    assert 0.9 <= closed_after <= 2.5, closed_after


async def test_the_next_head_on_a_kept_alive_connection_is_timed_too() -> None:
    async with running_gateway(settings(header_timeout_s=1.0, keepalive_timeout_s=30.0)) as port:
        reader, writer = await connect(port)
        writer.write(head("GET", "/health"))
        status, _, _ = await read_response(reader)
        assert status == 200
        writer.write(b"GET /health HTTP/1.1\r\n")
        sender = asyncio.create_task(trickle(writer, SLOW_HEADER, 0.05))
        closed_after = await seconds_until_closed(reader, limit=5.0)
        sender.cancel()
        await close(writer)
    assert 0.9 <= closed_after <= 2.5, closed_after


async def test_a_request_that_takes_longer_than_the_header_timeout_is_not_cut() -> None:
    """Its head and body come in separate reads, and nothing follows while the engine works."""
    sim = EngineSimulator(SimulatorScript(completion_tokens=3, prefill_delay_s=1.5), model="sim-model")
    url = await sim.start()
    limits = Settings(
        server={"header_timeout_s": 0.5, "keepalive_timeout_s": 30.0}, features={"metrics": False},
        models=[{"name": "sim-model", "backend": "openai", "url": url + "/v1"}],
    )
    body = orjson.dumps({"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]})
    try:
        async with running_gateway(limits) as port:
            reader, writer = await connect(port)
            writer.write(head("POST", CHAT, "Content-Type: application/json", f"Content-Length: {len(body)}"))
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(body)
            async with asyncio.timeout(10):
                status, _, answer = await read_response(reader)
            await close(writer)
    finally:
        await sim.stop()
    assert status == 200, answer
    assert orjson.loads(answer)["usage"]["completion_tokens"] == 3


async def test_idle_connections_are_closed_at_the_keepalive_timeout() -> None:
    async with running_gateway(settings(header_timeout_s=30.0, keepalive_timeout_s=1.0)) as port:
        silent = await connect(port)  # never sends a byte
        reader, writer = await connect(port)
        for _ in range(2):  # requests closer together than the idle timeout keep the connection
            writer.write(head("GET", "/health"))
            status, headers, _ = await read_response(reader)
            assert status == 200 and headers.get("connection", "").lower() != "close"
            await asyncio.sleep(0.6)
        idle_closed, silent_closed = await asyncio.gather(
            seconds_until_closed(reader, limit=5.0), seconds_until_closed(silent[0], limit=5.0)
        )
        await close(writer)
        await close(silent[1])
    assert 0.2 <= idle_closed <= 1.5, idle_closed  # 1 s after the last response, 0.6 s of it already past
    assert silent_closed <= 1.5, silent_closed


async def test_a_trickled_body_gets_408_at_the_body_timeout() -> None:
    async with running_gateway(settings(body_timeout_s=1.0, body_min_rate_bytes_s=1024)) as port:
        reader, writer = await connect(port)
        writer.write(head("POST", CHAT, "Content-Type: application/json", "Content-Length: 400"))
        sender = asyncio.create_task(trickle(writer, b'{"model": "' + b"m" * 388 + b'"}', 0.02))
        started = time.monotonic()
        async with asyncio.timeout(5.0):
            status, headers, body = await read_response(reader)
        elapsed = time.monotonic() - started
        closed_after = await seconds_until_closed(reader, limit=5.0)  # not kept for the rest of the body
        sender.cancel()
        await close(writer)
    assert status == 408
    assert headers["connection"].lower() == "close"
    assert openai_error(body)["code"] == "request_timeout"
    assert 0.9 <= elapsed <= 2.5, elapsed
    assert closed_after <= 0.5, closed_after


async def test_a_slow_body_that_keeps_the_minimum_rate_is_read() -> None:
    body = orjson.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "x" * 2900}]})
    async with running_gateway(settings(body_timeout_s=0.5, body_min_rate_bytes_s=1024)) as port:
        reader, writer = await connect(port)
        writer.write(head("POST", CHAT, "Content-Type: application/json", f"Content-Length: {len(body)}"))
        started = time.monotonic()
        for offset in range(0, len(body), 400):  # ~2 KB/s: longer than 0.5 s, faster than 1 KB/s
            writer.write(body[offset:offset + 400])
            await writer.drain()
            await asyncio.sleep(0.2)
        async with asyncio.timeout(5.0):
            status, _, answer = await read_response(reader)
        elapsed = time.monotonic() - started
        await close(writer)
    assert elapsed > 1.0
    assert status == 404 and openai_error(answer)["code"] == "model_not_found"


async def test_hundreds_of_slow_connections_do_not_hold_up_normal_traffic() -> None:
    limits = settings(header_timeout_s=2.0, body_timeout_s=2.0, keepalive_timeout_s=30.0)
    async with running_gateway(limits) as port:
        slow = [await connect(port) for _ in range(200)]
        senders = []
        for index, (_, writer) in enumerate(slow):
            if index % 2:
                writer.write(PARTIAL_HEAD)  # half trickle a head...
                senders.append(asyncio.create_task(trickle(writer, SLOW_HEADER, 0.25)))
            else:  # ...half trickle a body
                writer.write(head("POST", CHAT, "Content-Type: application/json", "Content-Length: 100000"))
                senders.append(asyncio.create_task(trickle(writer, b"{" * 100000, 0.25)))
        await asyncio.sleep(0.3)

        latencies = []
        for _ in range(10):
            started = time.monotonic()
            async with asyncio.timeout(2.0):
                status, _, _ = await request(port, head("GET", "/health"))
                bad, _, _ = await request(port, head("POST", CHAT, "Content-Length: 1") + b"{")
            latencies.append(time.monotonic() - started)
            assert status == 200 and bad == 400
        closed = await asyncio.gather(*(seconds_until_closed(reader, limit=15.0) for reader, _ in slow))
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*(close(writer) for _, writer in slow))
    assert max(latencies) < 1.0, latencies
    assert all(seconds <= 3.5 for seconds in closed), sorted(closed)[-5:]  # heads cut, bodies 408, at 2 s


def test_inferlab_serve_cuts_a_trickled_head() -> None:
    """The real ``inferlab serve`` process, not only the in-process runner."""
    config = {"server": {"header_timeout_s": 1.0, "keepalive_timeout_s": 30}, "features": {"metrics": False}}
    with serve_process(config) as gateway, socket.create_connection(("127.0.0.1", gateway.port), 5) as sock:
        sock.sendall(PARTIAL_HEAD)
        started = time.monotonic()
        sock.settimeout(0.05)
        closed = None
        for byte in SLOW_HEADER:
            try:
                sock.sendall(bytes((byte,)))
                if sock.recv(1024) == b"":
                    closed = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                closed = time.monotonic() - started
                break
    assert closed is not None and 0.9 <= closed <= 2.5, closed
