"""``inferlab serve --workers 2`` with the real SmolLM2 engine: one engine process, owned by the
supervisor, serves both workers; the gateway's OpenAI surface answers through the official SDK;
SIGTERM drains the workers and stops the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from inferlab.testing.gateway_process import GatewayProcess

from ..conftest import smollm2_config
from .test_openai_sdk_real_engine import HELLO, MODEL, engine_endpoint

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def two_worker_gateway(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    config = smollm2_config()
    config |= {"server": {"workers": 2}, "features": {"metering": False},
               "logging": {"level": "INFO", "json_format": True}}
    gateway = GatewayProcess(config).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def client(two_worker_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=two_worker_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        yield sdk


def test_one_engine_process_per_managed_engine(two_worker_gateway: GatewayProcess) -> None:
    logs = two_worker_gateway.logs()
    assert logs.count('"msg":"worker starting"') == 2
    assert logs.count('"msg":"engine process started"') == 2  # the chat engine and its embeddings engine, once
    url, _ = engine_endpoint(two_worker_gateway)
    assert httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 1}, timeout=10
                      ).status_code == 401  # only the workers, with the supervisor's key, reach it


def test_chat_stream_and_embeddings_through_either_worker(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]
    for _ in range(4):  # new connections: both workers accept on the one socket
        reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, temperature=0)
        assert reply.choices[0].message.content and reply.usage is not None and reply.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].usage is not None
    vectors = client.embeddings.create(model=MODEL, input=["hello", "world"]).data
    assert len(vectors) == 2 and len(vectors[0].embedding) > 100
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=HELLO)


def test_sigterm_drains_the_workers_and_stops_the_engine(two_worker_gateway: GatewayProcess) -> None:
    url, _ = engine_endpoint(two_worker_gateway)
    assert two_worker_gateway.stop() == 0
    logs = two_worker_gateway.logs()
    assert '"msg":"stopping workers"' in logs and '"msg":"engine stopped"' in logs and logs.rstrip().endswith(
        '"msg":"stopped"}')
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)
