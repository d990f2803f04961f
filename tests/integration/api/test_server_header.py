"""Every answer names the product in its ``Server`` header, never the framework and its version
(aiohttp's default was ``Python/3.11 aiohttp/3.14.5``): JSON, a stream's head (relayed from the
engine connection's callback or prepared by the handler), every kind of error, and the answers
the protocol gives before any middleware."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from inferlab.config import Settings
from inferlab.testing import EngineSimulator

from .harness import close, connect, running_gateway

MODEL = "sim-model"


def post(path: str, body: dict[str, object]) -> bytes:
    raw = orjson.dumps(body)
    return (f"POST {path} HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
            "\r\n").encode() + raw


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: g\r\n\r\n".encode()


CHAT = {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
ASKED = [
    ("json", get("/v1/models")),
    ("health", get("/health")),
    ("a stream", post("/v1/chat/completions", {**CHAT, "stream": True})),
    ("a whole answer", post("/v1/chat/completions", CHAT)),
    ("no such route", get("/v1/nothing-here")),
    ("an invalid body", post("/v1/chat/completions", {"model": MODEL})),
    ("an unknown model", post("/v1/chat/completions", {**CHAT, "model": "nope"})),
    ("not HTTP", b"HELLO THERE\r\n\r\n"),
    ("an unmet expectation", (b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n"
                              b"Expect: nothing\r\n\r\n")),
]


@pytest.mark.parametrize("metering", [False, True], ids=["relayed-first-event", "tapped-stream"])
async def test_every_answer_names_the_product_not_the_framework(sim: EngineSimulator, metering: bool) -> None:
    settings = Settings(models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
                        features={"metering": metering})
    heads: dict[str, bytes] = {}
    async with running_gateway(settings) as port:
        for what, data in ASKED:
            reader, writer = await connect(port)
            writer.write(data)
            heads[what] = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            await close(writer)
    for what, head in heads.items():
        lines = head.lower().split(b"\r\n")
        assert b"server: inferlab" in lines, (what, head)
        assert b"aiohttp" not in head.lower() and b"python/" not in head.lower(), (what, head)
    assert heads["a stream"].startswith(b"HTTP/1.1 200") and b"text/event-stream" in heads["a stream"]

