"""The engine simulator, exercised through the official OpenAI SDK and plain aiohttp (Ollama)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.pytest_plugin import MakeSim


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=16)


@pytest.fixture
async def client(sim: EngineSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{sim.base_url}/v1", api_key="x", max_retries=0) as c:
        yield c


@pytest.fixture
async def ollama(make_sim: MakeSim) -> EngineSimulator:
    return await make_sim(SimulatorScript(completion_tokens=8), protocol="ollama")


MESSAGES: Any = [{"role": "user", "content": "say three words"}]


async def test_chat_completion(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert reply.object == "chat.completion"
    assert reply.model == "sim-model"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.role == "assistant"
    assert len((reply.choices[0].message.content or "").split()) == 16
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 16)
    assert reply.usage.total_tokens == 19


async def test_chat_max_tokens_limits_and_reports_length(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


async def test_chat_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    contents, finishes, usage = [], [], None
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            contents.append(choice.delta.content)
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
    assert len(contents) == 16
    assert finishes == ["stop"]
    assert usage is not None and usage.completion_tokens == 16 and usage.prompt_tokens == 3


async def test_completions_plain_and_stream(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(
        model="sim-model", prompt="def add(a, b):", suffix="return c", max_tokens=5
    )
    assert reply.object == "text_completion"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.prompt_tokens == 5
    stream = await client.completions.create(model="sim-model", prompt="hello", stream=True)
    texts = [chunk.choices[0].text async for chunk in stream if chunk.choices]
    assert len([t for t in texts if t]) == 16


async def test_embeddings_are_deterministic(client: openai.AsyncOpenAI) -> None:
    first = await client.embeddings.create(model="sim-model", input=["alpha", "beta"])
    again = await client.embeddings.create(model="sim-model", input="alpha", encoding_format="float")
    vectors = [item.embedding for item in first.data]
    assert [len(v) for v in vectors] == [64, 64]
    assert vectors[0] != vectors[1]
    assert again.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-5)


async def test_models_health_and_metrics(sim: EngineSimulator, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["sim-model"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.base_url}/health") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
        async with http.get(f"{sim.base_url}/metrics") as resp:
            text = await resp.text()
    for gauge in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert f'{gauge}{{model_name="sim-model"}} 0.0' in text


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="other", messages=MESSAGES)


async def test_scripted_failures(sim: EngineSimulator, client: openai.AsyncOpenAI) -> None:
    sim.script.fail_status, sim.script.fail_next = 500, 1
    with pytest.raises(openai.InternalServerError) as server_error:
        await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert server_error.value.body is not None
    reply = await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert reply.choices[0].finish_reason == "stop"
    sim.script.fail_status, sim.script.fail_next = 429, -1
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert sim.requests_total == 4


async def test_hang_until_client_gives_up(sim: EngineSimulator) -> None:
    sim.script.hang = True
    async with openai.AsyncOpenAI(
        base_url=f"{sim.base_url}/v1", api_key="x", max_retries=0, timeout=0.3
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    for _ in range(50):
        if sim.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert sim.in_flight == 0


async def test_hanging_request_is_dropped_on_stop() -> None:
    simulator = EngineSimulator(SimulatorScript(hang=True))
    url = await simulator.start()
    async with aiohttp.ClientSession() as http:
        pending = asyncio.create_task(http.post(f"{url}/v1/completions", json={"prompt": "x"}))
        await asyncio.sleep(0.1)
        await asyncio.wait_for(simulator.stop(), timeout=3)
        with pytest.raises(aiohttp.ClientError):
            await pending


async def test_cut_mid_stream(sim: EngineSimulator, client: openai.AsyncOpenAI) -> None:
    sim.script.cut_after_tokens = 3
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = await client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 3


async def test_cut_without_stream_drops_connection(sim: EngineSimulator, client: openai.AsyncOpenAI) -> None:
    sim.script.cut_after_tokens = 0
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="sim-model", messages=MESSAGES)


async def test_timing_and_concurrency_limit(sim: EngineSimulator, client: openai.AsyncOpenAI) -> None:
    sim.script.update({"prefill_delay_s": 0.3, "completion_tokens": 2, "max_concurrency": 2})
    calls = [client.chat.completions.create(model="sim-model", messages=MESSAGES) for _ in range(5)]
    tasks = [asyncio.ensure_future(call) for call in calls]
    for _ in range(100):
        if sim.stats.waiting == 3:
            break
        await asyncio.sleep(0.01)
    assert (sim.stats.running, sim.stats.waiting) == (2, 3)
    await asyncio.gather(*tasks)
    assert sim.max_in_flight_seen == 5 and sim.in_flight == 0


async def test_prefill_per_token_and_saturation_slow_requests(sim: EngineSimulator,
                                                               client: openai.AsyncOpenAI) -> None:
    """Prefill grows with the prompt; past ``saturation_concurrency`` running requests every token
    slows in proportion (two at once with a knee of one: each twice as slow)."""
    loop = asyncio.get_running_loop()
    sim.script.update({"prefill_token_delay_s": 0.01, "completion_tokens": 1})
    started = loop.time()
    await client.chat.completions.create(model="sim-model", messages=[{"role": "user", "content": "a " * 20}])
    assert loop.time() - started >= 0.2  # 20 prompt words × 10 ms
    sim.script.update({"prefill_token_delay_s": 0.0, "completion_tokens": 11, "token_delay_s": 0.02})
    started = loop.time()
    await client.chat.completions.create(model="sim-model", messages=MESSAGES)
    alone = loop.time() - started
    sim.script.update({"saturation_concurrency": 1})
    started = loop.time()
    await asyncio.gather(*(client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=False)
                           for _ in range(2)))
    assert loop.time() - started >= 1.8 * alone >= 1.8 * 0.2


async def test_control_endpoint(sim: EngineSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.base_url}/_sim/script", json={"fail_status": 503, "fail_next": 2}) as r:
            assert r.status == 200
            assert (await r.json())["fail_next"] == 2
        assert (sim.script.fail_status, sim.script.fail_next) == (503, 2)
        async with http.post(f"{sim.base_url}/_sim/script", json={"nope": 1}) as r:
            assert r.status == 400
        async with http.post(f"{sim.base_url}/_sim/script", json={"hang": "yes"}) as r:
            assert r.status == 400
        async with http.post(f"{sim.base_url}/v1/completions", json={"prompt": "x"}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await r.json())["error"]["type"] == "server_error"
        async with http.get(f"{sim.base_url}/_sim/stats") as r:
            stats = await r.json()
    assert stats["requests_total"] == 1 and stats["in_flight"] == 0


async def _ndjson(resp: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    return [orjson.loads(line) async for line in resp.content if line.strip()]


async def test_ollama_chat_stream(ollama: EngineSimulator) -> None:
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "one two"}]}
    async with aiohttp.ClientSession() as http, http.post(f"{ollama.base_url}/api/chat", json=body) as resp:
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        lines = await _ndjson(resp)
    assert len(lines) == 9
    assert all(line["done"] is False and line["message"]["content"] for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert (final["prompt_eval_count"], final["eval_count"]) == (2, 8)
    assert final["total_duration"] >= final["eval_duration"] >= 0
    assert final["created_at"].endswith("Z")


async def test_ollama_generate_and_embed(ollama: EngineSimulator) -> None:
    body = {"model": "sim-model:latest", "prompt": "a b c", "stream": False, "options": {"num_predict": 3}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ollama.base_url}/api/generate", json=body) as resp:
            reply = await resp.json()
        embed = {"model": "sim-model", "input": ["x", "y"]}
        async with http.post(f"{ollama.base_url}/api/embed", json=embed) as resp:
            embedded = await resp.json()
        async with http.get(f"{ollama.base_url}/api/tags") as resp:
            tags = await resp.json()
        async with http.get(f"{ollama.base_url}/api/version") as resp:
            version = await resp.json()
        async with http.post(f"{ollama.base_url}/api/chat", json={"model": "nope", "messages": []}) as resp:
            assert resp.status == 404 and "not found" in (await resp.json())["error"]
    assert reply["done"] is True and reply["done_reason"] == "length"
    assert (reply["eval_count"], reply["prompt_eval_count"]) == (3, 3)
    assert len(reply["response"].split()) == 3
    assert [len(v) for v in embedded["embeddings"]] == [64, 64]
    assert tags["models"][0]["name"] == "sim-model:latest"
    assert "simulator" in version["version"]


async def test_ollama_failure_and_cut(ollama: EngineSimulator) -> None:
    body = {"model": "sim-model", "prompt": "hi"}
    ollama.script.update({"fail_status": 500, "fail_next": 1})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ollama.base_url}/api/generate", json=body) as resp:
            assert resp.status == 500 and "error" in await resp.json()
        ollama.script.cut_after_tokens = 2
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.post(f"{ollama.base_url}/api/generate", json=body) as resp:
                await _ndjson(resp)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "Message.messages.content"),
    ({"messages": [{"role": "user", "content": "hi", "images": ["%%%"]}]}, "base64"),
    ({"format": {"type": "json_object"}, "messages": [{"role": "user", "content": "hi"}], "tools": [{}]}, "tool"),
    ({"format": "yaml"}, "invalid format"),
    ({"messages": [{"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": "{}"}}]}]}, "arguments"),
])
async def test_ollama_refuses_what_ollama_cannot_parse(
    ollama: EngineSimulator, change: dict[str, Any], fragment: str
) -> None:
    body = {"model": "sim-model", "stream": False, "messages": [{"role": "user", "content": "hi"}], **change}
    async with aiohttp.ClientSession() as http, http.post(f"{ollama.base_url}/api/chat", json=body) as resp:
        assert resp.status == 400 and fragment in (await resp.json())["error"]
    assert ollama.last_request is not None and ollama.last_request["messages"] == body["messages"]


async def test_ollama_calls_tools_then_answers(ollama: EngineSimulator) -> None:
    tool = {"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}
    body: dict[str, Any] = {"model": "sim-model", "stream": False, "tools": [tool],
                            "messages": [{"role": "user", "content": "1+1?"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ollama.base_url}/api/chat", json=body) as resp:
            called = await resp.json()
        assert called["message"]["tool_calls"] == [{"function": {"index": 0, "name": "add", "arguments": {"a": 1}}}]
        body["messages"] += [called["message"], {"role": "tool", "tool_name": "add", "content": "2"}]
        async with http.post(f"{ollama.base_url}/api/chat", json=body) as resp:
            answered = await resp.json()
    assert "tool_calls" not in answered["message"] and answered["message"]["content"]


async def test_stream_faults_are_scripted_by_name(sim: EngineSimulator) -> None:
    script_url = f"{sim.base_url}/_sim/script"
    async with aiohttp.ClientSession() as session:
        async with session.post(script_url, json={"stream_fault": "no_such_fault"}) as response:
            assert response.status == 400
            assert "unknown stream fault" in (await response.json())["error"]
        async with session.post(script_url, json={"stream_fault": "truncate"}) as response:
            assert response.status == 200
        body = {"model": "sim-model", "messages": MESSAGES, "stream": True}
        async with session.post(f"{sim.base_url}/v1/chat/completions", json=body) as response:
            raw = await response.read()
    assert raw.count(b"data: ") == 2 and b"finish_reason\":\"stop" not in raw and b"[DONE]" not in raw
