"""An engine's error answer, through the real gateway: its text goes to the log (redacted), never to
the client; a 429 stays a 429; an engine refusing the gateway's credentials marks the replica
misconfigured instead of tripping its breaker."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript

MODEL = "sim-model"
ENGINE_KEY = "plainsecretvalue"  # the gateway's key for the engine: nothing in it looks like a key
LEAK = (
    f"upstream provider refused sk-proj-Zx9Yw8Vu7Ts6Rq5Po4 (engine key {ENGINE_KEY}); "
    "Authorization: Bearer tok_abcdef123456; Traceback at /srv/engine/worker.py line 12"
)
SECRETS = ("Zx9Yw8Vu7Ts6Rq5Po4", ENGINE_KEY, "tok_abcdef123456")
INTERNALS = ("upstream provider", "/srv/engine", "Traceback")


class Gateway:
    def __init__(self, server: TestServer, http: aiohttp.ClientSession, sims: list[EngineSimulator]) -> None:
        self.server, self.http, self.sims = server, http, sims

    async def chat(self, *, stream: bool = False, content: str = "hello") -> tuple[int, Any, CIMultiDict[str]]:
        body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, "stream": stream}
        async with self.http.post(self.server.make_url("/v1/chat/completions"), json=body) as response:
            raw = await response.read()
            if response.content_type == "text/event-stream":
                events = [orjson.loads(line[6:]) for line in raw.decode().splitlines()
                          if line.startswith("data: ") and line != "data: [DONE]"]
                return response.status, events, response.headers.copy()
            return response.status, orjson.loads(raw), response.headers.copy()

    async def replicas(self) -> list[dict[str, Any]]:
        async with self.http.get(self.server.make_url("/admin/backends")) as response:
            assert response.status == 200
            return list(orjson.loads(await response.read())["data"][0]["replicas"])


async def start_gateway(urls: list[str], backend: str = "openai", **model: Any) -> Gateway:
    config: dict[str, Any] = {"name": MODEL, "backend": backend, **model}
    if len(urls) == 1:
        config["url"] = urls[0]
    else:
        config["urls"] = urls
    settings = load_settings(overrides={"models": [config], "upstream": {"read_timeout_s": 5.0}})
    server = TestServer(await create_app(settings))
    await server.start_server()
    return Gateway(server, aiohttp.ClientSession(), [])


@pytest.fixture
async def gateways() -> AsyncIterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gateway in started:
        await gateway.http.close()
        await gateway.server.close()
        for sim in gateway.sims:
            await sim.stop()


async def simulated(gateways: list[Gateway], count: int = 1, protocol: str = "openai", **model: Any) -> Gateway:
    sims = [EngineSimulator(SimulatorScript(completion_tokens=3), model=MODEL, protocol=protocol)  # type: ignore[arg-type]
            for _ in range(count)]
    urls = [await sim.start() + ("/v1" if protocol == "openai" else "") for sim in sims]
    gateway = await start_gateway(urls, protocol, **model)
    gateway.sims = sims
    gateways.append(gateway)
    return gateway


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)


def assert_clean(message: str) -> None:
    for leaked in SECRETS + INTERNALS:
        assert leaked not in message, message


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
@pytest.mark.parametrize("stream", [False, True])
async def test_engine_error_text_goes_to_the_log_redacted_not_to_the_client(
    gateways: list[Gateway], caplog: pytest.LogCaptureFixture, protocol: str, stream: bool
) -> None:
    gateway = await simulated(gateways, protocol=protocol, api_key=ENGINE_KEY)
    sim = gateway.sims[0]
    # the Ollama adapter sends no key of its own: only the OpenAI-compatible one knows it to redact
    leak = LEAK if protocol == "openai" else LEAK.replace(ENGINE_KEY, "none")
    sim.script.update({"fail_status": 500, "fail_next": 1, "fail_message": leak})
    with caplog.at_level(logging.INFO, logger="inferlab"):
        status, body, headers = await gateway.chat(stream=stream)
    assert status == 502
    error = body["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["type"] == "upstream_error"
    assert_clean(error["message"])
    assert headers["x-request-id"] in error["message"]
    logged = [r for r in caplog.records if getattr(r, "engine_message", None)]
    assert len(logged) == 1 and logged[0].request_id == headers["x-request-id"]  # type: ignore[attr-defined]
    text: str = logged[0].engine_message  # type: ignore[attr-defined]
    assert "upstream provider refused sk-[REDACTED]" in text and "/srv/engine/worker.py" in text
    for secret in SECRETS:
        assert secret not in text, text
    assert all(secret not in everything_logged(caplog) for secret in SECRETS)


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_engine_verdict_on_the_request_is_passed_on_redacted(gateways: list[Gateway], status: int) -> None:
    gateway = await simulated(gateways, api_key=ENGINE_KEY)
    gateway.sims[0].script.update({
        "fail_status": status, "fail_next": 1,
        "fail_message": f"This model's maximum context length is 4096 tokens. (key={ENGINE_KEY}, sk-live-a1b2c3d4e5f6)",
    })
    code, body, headers = await gateway.chat()
    assert code == status
    message = body["error"]["message"]
    assert "maximum context length is 4096 tokens" in message and headers["x-request-id"] in message
    assert ENGINE_KEY not in message and "a1b2c3d4e5f6" not in message
    assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
async def test_engine_429_is_a_429_with_the_engines_retry_after(gateways: list[Gateway], protocol: str) -> None:
    gateway = await simulated(gateways, protocol=protocol)
    gateway.sims[0].script.update({"fail_status": 429, "fail_next": -1, "fail_retry_after_s": 7, "fail_message": LEAK})
    for stream in (False, True):
        status, body, headers = await gateway.chat(stream=stream)
        assert status == 429 and headers["Retry-After"] == "7"
        assert body["error"]["type"] == "rate_limit_error" and body["error"]["code"] == "engine_overloaded"
        assert_clean(body["error"]["message"])
    replica = (await gateway.replicas())[0]
    assert replica["breaker"]["consecutive_failures"] == 0 and replica["failures"] == 0  # busy is not broken


async def test_engine_429_fails_over_to_another_replica(gateways: list[Gateway]) -> None:
    gateway = await simulated(gateways, 2, routing={"strategy": "round_robin"})
    gateway.sims[0].script.update({"fail_status": 429, "fail_next": -1})
    for stream in (False, True, False, True):
        assert (await gateway.chat(stream=stream))[0] == 200
    assert gateway.sims[0].requests_total >= 1  # it was tried, then another replica answered


@pytest.mark.parametrize("status", [401, 403])
async def test_engine_refusing_the_gateways_credentials_marks_the_replica(
    gateways: list[Gateway], status: int
) -> None:
    gateway = await simulated(gateways, api_key=ENGINE_KEY)
    sim = gateway.sims[0]
    sim.script.update({"fail_status": status, "fail_next": -1, "fail_message": f"invalid api key {ENGINE_KEY}"})
    code, body, _ = await gateway.chat()
    assert code == 502 and body["error"]["code"] == "engine_misconfigured"
    assert_clean(body["error"]["message"])
    replica = (await gateway.replicas())[0]
    assert replica["misconfigured"] is True
    assert replica["error"] == f"engine rejected the gateway's credentials (HTTP {status})"
    assert replica["healthy"] is False
    assert replica["breaker"] == {**replica["breaker"], "state": "closed", "consecutive_failures": 0}
    # the next requests are not sent to an engine that refuses the gateway: 503 at once, with a wait
    started = time.monotonic()
    code, body, headers = await gateway.chat(stream=True)
    assert code == 503 and int(headers["Retry-After"]) >= 1 and time.monotonic() - started < 0.5
    assert sim.requests_total == 1
    async with gateway.http.get(gateway.server.make_url("/ready")) as ready:
        assert ready.status == 503


async def test_a_misconfigured_replica_leaves_routing_to_the_others(gateways: list[Gateway]) -> None:
    gateway = await simulated(gateways, 2, routing={"strategy": "round_robin"})
    gateway.sims[0].script.update({"fail_status": 401, "fail_next": -1})
    for stream in (False, True, False, True, False):
        assert (await gateway.chat(stream=stream))[0] == 200
    assert gateway.sims[0].requests_total == 1  # refused once, then left alone
    bad, good = await gateway.replicas()
    assert bad["misconfigured"] is True and good["misconfigured"] is False and good["error"] is None


# -- error events in the middle of a stream: a scripted engine sends one chunk, then an error ------

def _openai_engine() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": MODEL,
                 "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: " + orjson.dumps({"error": {"message": LEAK, "type": "server_error"}}) + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def _ollama_engine() -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(orjson.dumps({"model": MODEL, "message": {"content": "Hi"}, "done": False}) + b"\n")
        await response.write(orjson.dumps({"error": LEAK.replace(ENGINE_KEY, "none")}) + b"\n")  # no key of its own
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    return app


@pytest.mark.parametrize("protocol", ["openai", "ollama"])
async def test_error_event_mid_stream_reaches_the_client_without_the_engines_text(
    gateways: list[Gateway], caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    engine = TestServer(_openai_engine() if protocol == "openai" else _ollama_engine())
    await engine.start_server()
    try:
        url = str(engine.make_url("/v1" if protocol == "openai" else "/"))
        gateway = await start_gateway([url], protocol, api_key=ENGINE_KEY if protocol == "openai" else None)
        gateways.append(gateway)
        with caplog.at_level(logging.INFO, logger="inferlab"):
            status, events, headers = await gateway.chat(stream=True)
        assert status == 200 and events[0]["choices"][0]["delta"]["content"] == "Hi"
        errors = [event for event in events if "error" in event]
        assert len(errors) == 1 and errors[0] is events[-1]
        assert_clean(errors[0]["error"]["message"])
        assert headers["x-request-id"] in errors[0]["error"]["message"]
        assert any("sk-[REDACTED]" in getattr(r, "engine_message", "") for r in caplog.records)
        assert all(secret not in everything_logged(caplog) for secret in SECRETS)
    finally:
        await engine.close()
