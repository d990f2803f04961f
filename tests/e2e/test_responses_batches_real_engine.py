"""The Responses API and the Batch API end to end: a live `inferlab serve` with authentication in
front of a real llama.cpp engine (SmolLM2-135M), the official openai SDK as the client, two tenants
made through the admin API. Tenant B never sees tenant A's responses, files or batches (404)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from inferlab.testing.gateway_process import GatewayProcess, llama_server

pytestmark = pytest.mark.engine
MODEL = "smollm2"
PEPPER = "e2e-responses-pepper-0123456789"


@pytest.fixture(scope="module")
def engine(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[str]:
    with llama_server(llama_server_path, smollm2_gguf, ctx_size=4096, parallel=4) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(engine: str) -> Iterator[GatewayProcess]:
    config = {
        "features": {"auth": True},
        "auth": {"pepper": PEPPER, "key_cache_ttl_s": 1.0},
        "batches": {"poll_s": 0.1, "concurrency": 4, "reserve_slots": 0},
        "models": [{"name": MODEL, "backend": "openai", "url": f"{engine}/v1", "engine": "llamacpp"}],
        "logging": {"level": "INFO"},
    }
    process = GatewayProcess(config).start(timeout=60)
    yield process
    process.stop()


def tenant_client(gateway: GatewayProcess, tenant: str) -> openai.OpenAI:
    root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}, timeout=10) as admin:
        assert admin.post("/admin/tenants", json={"id": tenant, "tier": "pro"}).status_code == 201
        user = admin.post("/admin/users", json={"name": "dev", "tenant_id": tenant}).json()
        key = admin.post("/admin/keys", json={"name": "sdk", "user_id": user["id"]}).json()["key"]
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def alice(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with tenant_client(gateway, "alice-co") as client:
        yield client


@pytest.fixture(scope="module")
def bob(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with tenant_client(gateway, "bob-co") as client:
        yield client


def test_a_plain_response(alice: openai.OpenAI) -> None:
    response = alice.responses.create(model=MODEL, input="Say hello in one word.", instructions="Answer briefly.",
                                      max_output_tokens=16, temperature=0)
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete") and response.model == MODEL
    assert response.output_text.strip()
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    usage = response.usage
    assert usage is not None and usage.input_tokens > 5 and 0 < usage.output_tokens <= 16
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert alice.responses.retrieve(response.id).output_text == response.output_text


def test_a_streamed_response_tells_its_events_in_order(alice: openai.OpenAI) -> None:
    events = list(alice.responses.create(model=MODEL, input="Count from one to five.", max_output_tokens=24,
                                         temperature=0, stream=True))
    kinds = [event.type for event in events]
    deltas = [i for i, kind in enumerate(kinds) if kind == "response.output_text.delta"]
    assert deltas and kinds == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * len(deltas), "response.output_text.done", "response.content_part.done",
        "response.output_item.done", kinds[-1]]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(events[i].delta for i in deltas)  # type: ignore[union-attr]
    final: Any = events[-1]
    assert final.response.output_text == text and final.response.usage.output_tokens > 0
    assert alice.responses.retrieve(final.response.id).output_text == text  # stored before the last event


def test_a_json_schema_response(alice: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    response = alice.responses.create(
        model=MODEL, input="Name a large city and its population.", max_output_tokens=80, temperature=0,
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}})
    answer = json.loads(response.output_text)
    assert isinstance(answer["city"], str) and isinstance(answer["population"], int)


def test_a_two_turn_conversation_by_previous_response_id(alice: openai.OpenAI) -> None:
    first = alice.responses.create(model=MODEL, input="My name is Ada. Remember it.", max_output_tokens=16,
                                   temperature=0)
    second = alice.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id,
                                    max_output_tokens=16, temperature=0)
    assert second.previous_response_id == first.id
    assert first.usage is not None and second.usage is not None
    # the second call's prompt holds the first turn: its input, and the answer to it
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    items = alice.responses.input_items.list(second.id).data
    assert [item.type for item in items] == ["message"] and items[0].content[0].text == "What is my name?"  # type: ignore[union-attr]


def test_store_false_is_honoured_and_unsupported_fields_are_named(alice: openai.OpenAI) -> None:
    unstored = alice.responses.create(model=MODEL, input="Hi", max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(unstored.id)
    with pytest.raises(openai.BadRequestError) as refused:
        alice.responses.create(model=MODEL, input="Hi", reasoning={"effort": "high"})
    assert refused.value.body["param"] == "reasoning"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as refused:
        alice.responses.create(model=MODEL, input="Hi", tools=[{"type": "web_search"}])
    assert refused.value.body["param"] == "tools[0].type"  # type: ignore[index]


def batch_lines(count: int, max_tokens: int = 8) -> bytes:
    return "\n".join(json.dumps({
        "custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": f"What is {i} plus {i}?"}],
                 "max_tokens": max_tokens, "temperature": 0}}) for i in range(count)).encode()


def wait_for(client: openai.OpenAI, batch_id: str, done: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch not there in {timeout_s} s: {batch}"
        time.sleep(0.1)


def test_a_batch_of_50_runs_to_completion(alice: openai.OpenAI) -> None:
    uploaded = alice.files.create(file=("fifty.jsonl", batch_lines(50, max_tokens=4)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert alice.files.content(uploaded.id).content == batch_lines(50, max_tokens=4)
    batch = alice.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                                 metadata={"job": "fifty"})
    assert batch.status == "validating" and batch.request_counts is not None and batch.request_counts.total == 50
    done = wait_for(alice, batch.id, lambda b: b.status in ("completed", "failed"), 90)
    assert done.status == "completed" and done.request_counts.completed == 50 and done.error_file_id is None
    lines = [json.loads(line) for line in alice.files.content(done.output_file_id).text.splitlines()]
    assert sorted(line["custom_id"] for line in lines) == sorted(f"req-{i}" for i in range(50))
    for line in lines:
        reply = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])  # the SDK parses it
        assert line["response"]["status_code"] == 200 and reply.choices[0].message.content is not None
        assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 4
    assert batch.id in [b.id for b in alice.batches.list(limit=10).data]


def test_a_batch_cancelled_midway(alice: openai.OpenAI) -> None:
    uploaded = alice.files.create(file=("long.jsonl", batch_lines(40, max_tokens=48)), purpose="batch")
    batch = alice.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_for(alice, batch.id, lambda b: b.request_counts.completed >= 2)
    assert alice.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = wait_for(alice, batch.id, lambda b: b.status == "cancelled")
    assert 2 <= done.request_counts.completed < 40 and done.cancelled_at is not None
    lines = alice.files.content(done.output_file_id).text.splitlines()
    assert len(lines) == done.request_counts.completed  # what was answered is kept, once each


def test_tenant_b_cannot_reach_tenant_a_objects(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    response = alice.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    uploaded = alice.files.create(file=("two.jsonl", batch_lines(2)), purpose="batch")
    batch = alice.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    for attempt in (lambda: bob.responses.retrieve(response.id),
                    lambda: bob.responses.input_items.list(response.id),
                    lambda: bob.responses.delete(response.id),
                    lambda: bob.responses.create(model=MODEL, input="Hi", previous_response_id=response.id),
                    lambda: bob.files.retrieve(uploaded.id),
                    lambda: bob.files.content(uploaded.id),
                    lambda: bob.files.delete(uploaded.id),
                    lambda: bob.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                               completion_window="24h"),
                    lambda: bob.batches.retrieve(batch.id),
                    lambda: bob.batches.cancel(batch.id)):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert batch.id not in [b.id for b in bob.batches.list().data]
    assert uploaded.id not in [f.id for f in bob.files.list().data]
    assert alice.responses.retrieve(response.id).id == response.id  # still there for its owner
    wait_for(alice, batch.id, lambda b: b.status == "completed")


def test_legacy_completions_logprobs_and_echo(alice: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    reply = alice.completions.create(model=MODEL, prompt=prompt, max_tokens=3, logprobs=2, temperature=0)
    choice, usage = reply.choices[0], reply.usage
    assert choice.logprobs is not None and choice.logprobs.tokens and usage is not None
    assert len(choice.logprobs.tokens) == usage.completion_tokens and "".join(choice.logprobs.tokens) == choice.text
    assert all(isinstance(p, float) and p <= 0 for p in choice.logprobs.token_logprobs or [])
    assert all(1 <= len(top) <= 2 for top in choice.logprobs.top_logprobs or [])
    assert choice.logprobs.text_offset is not None and choice.logprobs.text_offset[0] == 0

    echoed = alice.completions.create(model=MODEL, prompt=prompt, max_tokens=3, echo=True, temperature=0)
    assert echoed.choices[0].text == prompt + choice.text
    with pytest.raises(openai.BadRequestError) as refused:
        alice.completions.create(model=MODEL, prompt=prompt, max_tokens=3, echo=True, logprobs=1)
    assert refused.value.body["param"] == "echo"  # type: ignore[index]


def test_tokenize_and_detokenize_through_the_engine(gateway: GatewayProcess, alice: openai.OpenAI) -> None:
    headers = {"Authorization": f"Bearer {alice.api_key}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as http:
        tokens = http.post("/tokenize", json={"model": MODEL, "prompt": "Hello world", "add_special_tokens": False})
        assert tokens.status_code == 200 and tokens.json()["count"] == len(tokens.json()["tokens"]) >= 2
        text = http.post("/detokenize", json={"model": MODEL, "tokens": tokens.json()["tokens"]})
        assert text.status_code == 200 and text.json()["prompt"] == "Hello world"
        assert http.post("/tokenize", json={"model": "nope", "prompt": "x"}).status_code == 404
        refused = http.post("/detokenize", json={"model": MODEL, "tokens": ["x"]})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "tokens"
