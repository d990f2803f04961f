"""A stream's last event (``[DONE]``) reaches the client only once the gateway is done with the
call (``SseResponse``): a client that sends its next request the moment it reads ``[DONE]``, on
the same connection, finds its one concurrency slot already free — with the in-process limiter
and with Redis, whose release is a round trip."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import orjson
import pytest

from inferlab.testing import EngineSimulator
from inferlab.testing.gateway_process import GatewayProcess

MODEL = "sim-model"
ROUNDS = 100


def stream_request() -> bytes:
    body = orjson.dumps({"model": MODEL, "stream": True, "max_tokens": 2,
                         "messages": [{"role": "user", "content": "hello"}]})
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body))


def run_back_to_back(port: int) -> list[bytes]:
    """Each request sent on one kept-alive connection the moment the previous one's [DONE] is read;
    the status line of each."""
    statuses = []
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        for _ in range(ROUNDS):
            sock.sendall(stream_request())
            while b"data: [DONE]" not in pending and b"\r\n0\r\n\r\n" not in pending:
                data = sock.recv(65536)
                assert data, "the gateway closed the connection"
                pending += data
            statuses.append(pending.split(b"\r\n", 1)[0])
            while not pending.endswith(b"\r\n0\r\n\r\n"):  # the rest of this answer, before the next
                pending += sock.recv(65536)
            pending = b""
    return statuses


@pytest.mark.parametrize("limiter", ["memory", "redis"])
async def test_a_request_sent_on_done_finds_the_concurrency_slot_free(
    sim: EngineSimulator, request: pytest.FixtureRequest, limiter: str
) -> None:
    ratelimit: dict[str, Any] = {"limits": [{"scope": "key", "tpm": 10**9, "max_concurrent": 1}], "backend": limiter}
    config: dict[str, Any] = {
        "features": {"ratelimit": True},
        "ratelimit": ratelimit,
        "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    }
    if limiter == "redis":
        config["redis_url"] = request.getfixturevalue("redis_url")
        ratelimit["redis_prefix"] = f"test:{uuid.uuid4().hex}:"
    gateway = await asyncio.to_thread(GatewayProcess(config).start, timeout=60)
    try:
        statuses = await asyncio.to_thread(run_back_to_back, gateway.port)
    finally:
        await asyncio.to_thread(gateway.stop)
    assert statuses == [b"HTTP/1.1 200 OK"] * ROUNDS
