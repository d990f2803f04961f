"""The fallback engine: llama-cpp-python's OpenAI server, when no llama-server binary is at hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from inferlab.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.fallback_engine
MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def gateway(llama_cpp_python_server: None, smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    config = {
        "models": [{"name": MODEL, "backend": "llamacpp", "path": "embedded:smollm2", "context_size": 2048}],
        "engines": {"prefer": "llama-cpp-python"},
    }
    gw = GatewayProcess(config).start()
    yield gw
    gw.stop()


def test_start_up_names_the_fallback_engine(gateway: GatewayProcess) -> None:
    assert "llama-cpp-python on http://127.0.0.1" in gateway.logs()
    assert gateway.ready_status()["engines"] == {MODEL: "ready", f"{MODEL}-embed": "ready"}


def test_chat_stream_and_embeddings_through_the_fallback(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "Say hi."}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6)
    assert reply.model == MODEL and reply.usage is not None and reply.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=6, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    vectors = client.embeddings.create(model=MODEL, input="hello")
    assert len(vectors.data[0].embedding) == 576
    client.close()
