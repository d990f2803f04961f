"""The official openai SDK against a live `inferlab serve` with the real SmolLM2 engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from inferlab.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.engine
MODEL = "smollm2-135m"
HELLO = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture(scope="module")
def client(live_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=live_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        yield sdk


def engine_endpoint(gateway: GatewayProcess) -> tuple[str, str]:
    """The chat engine's URL (from the log) and its per-process API key (from its environment)."""
    started = {}
    for line in gateway.logs().splitlines():
        if line.startswith("{") and '"engine process started"' in line:
            entry = json.loads(line)
            started[entry["engine"]] = entry
    entry = started[MODEL]
    environ = Path(f"/proc/{entry['pid']}/environ").read_bytes().split(b"\0")
    key = next(v.split(b"=", 1)[1] for v in environ if v.startswith(b"LLAMA_API_KEY="))
    return f"http://127.0.0.1:{entry['port']}", key.decode()


def test_engines_refuse_anyone_but_the_gateway(live_gateway: GatewayProcess) -> None:
    url, _ = engine_endpoint(live_gateway)
    response = httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 1}, timeout=10)
    assert response.status_code == 401


def test_models_are_listed_and_retrieved(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_answers_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12, temperature=0)
    assert reply.model == MODEL
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_usage_equals_the_engines_own(client: openai.OpenAI, live_gateway: GatewayProcess) -> None:
    url, key = engine_endpoint(live_gateway)
    direct = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    kwargs = {"model": MODEL, "messages": HELLO, "max_tokens": 16, "temperature": 0, "seed": 7}
    through = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    with direct:
        own = direct.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert through.usage == own.usage
    assert through.choices[0].message.content == own.choices[0].message.content


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=16, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.completion_tokens > 0
    assert all(c.model == MODEL for c in chunks)


def test_a_stream_says_what_the_engines_own_stream_says(client: openai.OpenAI, live_gateway: GatewayProcess) -> None:
    """The gateway relays a stream's first events from the engine connection's callback and
    forwards the rest: the client gets the engine's own deltas, finish and usage, named as asked."""
    url, key = engine_endpoint(live_gateway)
    kwargs = {"model": MODEL, "messages": HELLO, "max_tokens": 16, "temperature": 0, "seed": 7, "stream": True,
              "stream_options": {"include_usage": True}}
    through = list(client.chat.completions.create(**kwargs))  # type: ignore[call-overload]
    with openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as direct:
        own = list(direct.chat.completions.create(**kwargs))  # type: ignore[call-overload]

    def said(chunks: list[Any]) -> tuple[list[Any], list[Any], Any]:
        choices = [c.choices[0] for c in chunks if c.choices]
        return [c.delta.model_dump() for c in choices], [c.finish_reason for c in choices], chunks[-1].usage

    assert said(through) == said(own)
    assert said(through)[0][0]["role"] == "assistant" and said(through)[2] is not None
    assert {c.model for c in through} == {MODEL}


def test_chat_stream_without_usage_has_no_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, stream=True))
    assert chunks and all(c.usage is None for c in chunks)


def test_text_completion(client: openai.OpenAI) -> None:
    reply = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_fill_in_the_middle_uses_the_models_template(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=MODEL, prompt="def add(a, b):\n    return ", suffix="\n\nprint(add(1, 2))\n", max_tokens=8, temperature=0
    )
    assert reply.usage is not None and reply.usage.prompt_tokens > 10  # the suffix reached the engine
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_text_completion_stream(client: openai.OpenAI) -> None:
    chunks = list(client.completions.create(model=MODEL, prompt="1, 2, 3,", max_tokens=8, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices)


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=MODEL, input=["hello world", "goodbye"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) == 576  # SmolLM2-135M hidden size
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0


def test_every_response_has_a_request_id(client: openai.OpenAI, live_gateway: GatewayProcess) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert raw.headers.get("x-request-id")
    error = httpx.post(live_gateway.url + "/v1/chat/completions", content=b"{", timeout=10)
    assert error.headers.get("x-request-id")
    echoed = httpx.get(live_gateway.url + "/v1/models", headers={"x-request-id": "trace-42"}, timeout=10)
    assert echoed.headers["x-request-id"] == "trace-42"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"model": "no-such-model", "messages": HELLO}, openai.NotFoundError),
        ({"model": MODEL, "messages": []}, openai.BadRequestError),
        ({"model": MODEL, "messages": HELLO, "max_tokens": -1}, openai.BadRequestError),
        ({"model": MODEL, "messages": HELLO, "max_tokens": 10**9}, openai.BadRequestError),
        ({"model": MODEL, "messages": HELLO, "n": 1000}, openai.BadRequestError),
        ({"model": MODEL, "messages": HELLO, "temperature": "hot"}, openai.BadRequestError),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, openai.BadRequestError),
    ],
)
def test_bad_requests_map_to_sdk_errors(client: openai.OpenAI, kwargs: dict, error: type) -> None:
    with pytest.raises(error) as raised:
        client.chat.completions.create(**kwargs)
    body = raised.value.body
    assert isinstance(body, dict) and body.get("message") and body.get("type")


def test_non_json_and_oversized_bodies(live_gateway: GatewayProcess) -> None:
    url = live_gateway.url + "/v1/chat/completions"
    for bad in (b"not json", b"[1, 2]", b"", b'{"model": 5, "messages": []}'):
        response = httpx.post(url, content=bad, timeout=10)
        assert response.status_code == 400, bad
        assert set(response.json()["error"]) == {"message", "type", "code", "param"}
    huge = b'{"model": "smollm2-135m", "messages": [{"role": "user", "content": "' + b"a" * (5 << 20) + b'"}]}'
    response = httpx.post(url, content=huge, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_and_method(live_gateway: GatewayProcess) -> None:
    assert httpx.get(live_gateway.url + "/v1/nope", timeout=10).status_code == 404
    response = httpx.get(live_gateway.url + "/v1/chat/completions", timeout=10)
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"


def test_metrics_count_requests_and_tokens(client: openai.OpenAI, live_gateway: GatewayProcess) -> None:
    client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4)
    text = httpx.get(live_gateway.url + "/metrics", timeout=10).text
    assert 'inferlab_requests_total{model="smollm2-135m",route="/v1/chat/completions",status="200"}' in text
    assert 'inferlab_tokens_total{direction="completion",model="smollm2-135m"}' in text
    assert 'inferlab_engine_up{engine="smollm2-135m"} 1.0' in text
    assert "inferlab_time_to_first_token_seconds_bucket" in text
    assert "inferlab_requests_in_flight" in text


def test_logs_are_json_and_hold_no_prompt_text(client: openai.OpenAI, live_gateway: GatewayProcess) -> None:
    secret = "zebra-canary-prompt-7731"
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": secret}], max_tokens=2)
    gateway_lines = [line for line in live_gateway.logs().splitlines() if line.startswith("{")]
    assert gateway_lines and all(json.loads(line)["level"] for line in gateway_lines)
    assert any('"request_id"' in line for line in gateway_lines)
    assert secret not in live_gateway.logs()


def test_back_to_back_streams_never_reuse_a_connection_llama_server_dropped(live_gateway: GatewayProcess) -> None:
    """llama-server closes a kept-alive connection after a stream; the adapter must not reuse it
    (without `close_after_stream` about one stream in eight failed with ServerDisconnectedError)."""
    import asyncio

    from inferlab.backends.engine_client import EngineClient
    from inferlab.backends.openai_compat import OpenAICompatibleBackend
    from inferlab.types import InferenceRequest, RequestKind

    url, key = engine_endpoint(live_gateway)

    async def scenario() -> int:
        client = EngineClient()
        try:
            backend = OpenAICompatibleBackend("engine", url + "/v1", client, api_key=key, close_after_stream=True)
            semaphore = asyncio.Semaphore(4)

            async def one(i: int) -> int:
                body = {"model": MODEL, "messages": [{"role": "user", "content": f"count to {i}"}], "max_tokens": 12}
                async with semaphore:
                    request = InferenceRequest(RequestKind.CHAT, MODEL, body, f"r{i}", stream=True)
                    return len([chunk async for chunk in backend.stream(request)])

            counts = await asyncio.gather(*(one(i) for i in range(16)))
            return min(counts)
        finally:
            await client.close()

    assert asyncio.run(scenario()) > 0
