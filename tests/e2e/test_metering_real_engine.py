"""Usage events with the real engine (llama-server, SmolLM2): a complete answer carries the engine's
own usage; a client leaving mid-stream is charged what was generated, counted with the model's own
tokenizer through the engine (``/apply-template`` then ``/tokenize``) — and that count of the prompt
is the engine's own, to the token."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid

import aiohttp
import pytest

from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.codec import decode
from inferlab.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.engine
MODEL = "smollm2-135m"
MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "List the planets of the solar system, one per line, with a fact each."}]


def event_of(gateway: GatewayProcess, request_id: str, timeout: float = 20.0) -> UsageEvent:
    """The usage event of ``request_id``, from the gateway's outbox (shipped or not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = sqlite3.connect(gateway.workdir / "data" / "usage-outbox.db")
        try:
            events = [decode(payload) for (payload,) in connection.execute("SELECT payload FROM usage_outbox")]
        finally:
            connection.close()
        found = [event for event in events if event.request_id == request_id]
        if found:
            assert len(found) == 1
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no usage event for {request_id}")


async def test_a_client_leaving_mid_stream_is_charged_the_engines_own_token_count(live_gateway: GatewayProcess) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, "max_tokens": 24, "temperature": 0}
    whole, cut = f"whole-{uuid.uuid4().hex[:8]}", f"cut-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as session:
        async with session.post(live_gateway.url + "/v1/chat/completions", json=body,
                                headers={"x-request-id": whole}) as response:
            assert (await response.read()).endswith(b"data: [DONE]\n\n")
        long = {**body, "max_tokens": 400, "ignore_eos": True}
        response = await session.post(live_gateway.url + "/v1/chat/completions", json=long,
                                      headers={"x-request-id": cut})
        received = 0
        while received < 8:
            line = await response.content.readline()
            received += line.startswith(b"data: {")
        response.close()  # the client leaves after 8 chunks
    engine = await asyncio.to_thread(event_of, live_gateway, whole)
    assert (engine.status, engine.token_source, engine.completion_tokens) == (EventStatus.SUCCESS, TokenSource.ENGINE, 24)
    counted = await asyncio.to_thread(event_of, live_gateway, cut)
    assert (counted.status, counted.http_status, counted.token_source) == (
        EventStatus.DISCONNECT, 499, TokenSource.TOKENIZER)
    assert counted.prompt_tokens == engine.prompt_tokens  # the chat template and the tokenizer, as the engine
    # what was generated before the engine was stopped: at least the 7 tokens of the 8 chunks read (the
    # first carries the role only), re-tokenized from their text (generation may split text otherwise)
    assert received - 1 <= counted.completion_tokens < 400
