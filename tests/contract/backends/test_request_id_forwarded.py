"""The request id a client sends (or the gateway made) reaches the engine as ``x-request-id``, on
every call an adapter makes: whole, streamed and embeddings, OpenAI-compatible and Ollama."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.backends.engine_client import EngineClient
from inferlab.backends.ollama import OllamaBackend
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.config import Settings
from inferlab.types import InferenceBackend, InferenceRequest, RequestKind

USAGE = {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}


class Engine:
    """A minimal engine that answers both protocols and remembers each request's x-request-id."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    async def openai(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers.get("x-request-id"))
        body = await request.json()
        if request.path.endswith("/embeddings"):
            return web.json_response({"object": "list", "data": [{"embedding": [0.1]}], "usage": USAGE})
        choice = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        if not body.get("stream"):
            return web.json_response(
                {"id": "x", "object": "chat.completion", "model": "m", "choices": [choice], "usage": USAGE}
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        delta = {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}
        chunk = {"object": "chat.completion.chunk", "model": "m", "choices": [delta], "usage": USAGE}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async def ollama(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers.get("x-request-id"))
        body = orjson.loads(await request.read())
        if request.path == "/api/embed":
            return web.json_response({"embeddings": [[0.1]], "prompt_eval_count": 2})
        event = {"message": {"role": "assistant", "content": "hi"}, "done": True, "done_reason": "stop",
                 "prompt_eval_count": 2, "eval_count": 1}
        if not body.get("stream"):
            return web.json_response(event)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(orjson.dumps(event) + b"\n")
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", self.openai)
        app.router.add_post("/api/{tail:.*}", self.ollama)
        return app


@pytest.fixture
async def engine() -> AsyncIterator[tuple[Engine, TestServer]]:
    fake = Engine()
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, server
    await server.close()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
async def test_every_adapter_call_carries_the_request_id(
    engine: tuple[Engine, TestServer], protocol: str
) -> None:
    fake, server = engine
    client = EngineClient()
    async with aiohttp.ClientSession() as session:
        backend: InferenceBackend
        if protocol == "openai":
            backend = OpenAICompatibleBackend("e", str(server.make_url("/v1")), client)
        else:
            backend = OllamaBackend("e", str(server.make_url("")), session, served_name="m")
        await backend.complete(InferenceRequest(RequestKind.CHAT, "m", chat(), "rid-whole", False, False))
        assert [chunk async for chunk in backend.stream(
            InferenceRequest(RequestKind.CHAT, "m", chat(stream=True), "rid-stream", True, False))]
        embedding = {"model": "m", "input": "x"}
        await backend.embed(InferenceRequest(RequestKind.EMBEDDING, "m", embedding, "rid-embed"))
    await client.close()
    assert fake.seen == ["rid-whole", "rid-stream", "rid-embed"]


async def test_the_gateway_forwards_the_clients_request_id(engine: tuple[Engine, TestServer]) -> None:
    fake, server = engine
    settings = Settings(models=[{"name": "m", "backend": "openai", "url": str(server.make_url("/v1"))}])
    gateway = TestServer(await create_app(settings))
    await gateway.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            url = gateway.make_url("/v1/chat/completions")
            async with session.post(url, json=chat(), headers={"x-request-id": "trace-77"}) as response:
                assert response.status == 200 and response.headers["x-request-id"] == "trace-77"
            async with session.post(url, json=chat()) as response:
                assert response.status == 200
                made = response.headers["x-request-id"]
    finally:
        await gateway.close()
    assert fake.seen == ["trace-77", made]
