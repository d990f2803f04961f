"""The Ollama adapter maps every OpenAI field Ollama can honour (tools, response_format, images,
logprobs, sampling options, embeddings dimensions) and refuses the rest with a 400 naming the
field — through the gateway, with the openai SDK, against the simulated Ollama, which checks the
native request as Ollama parses it and keeps it for the assertions."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer

from inferlab.backends.ollama_response import missing_logprobs
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.pytest_plugin import MakeSim
from tests.contract.backends.test_adapters_via_simulator import MODEL, gateway_for

HI = [{"role": "user", "content": "what is the weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
        "strict": True,
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really-a-png").decode()


@pytest.fixture
async def ollama(make_sim: MakeSim) -> AsyncIterator[tuple[EngineSimulator, openai.AsyncOpenAI]]:
    sim = await make_sim(SimulatorScript(completion_tokens=5), model=MODEL, protocol="ollama")
    assert sim.base_url is not None
    server: TestServer = await gateway_for(sim.base_url, "ollama")
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0, timeout=10)
    yield sim, client
    await client.close()
    await server.close()


def sent(sim: EngineSimulator) -> dict[str, Any]:
    assert sim.last_request is not None, "nothing reached the engine"
    return sim.last_request


async def test_tool_calls_round_trip(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
    assert sent(sim)["tools"] == [{"type": "function", "function": {
        k: WEATHER["function"][k] for k in ("name", "description", "parameters")}}]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "simulated", "unit": "c"}

    history = [*HI, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "21 degrees"}]
    answer = await client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER])
    native = sent(sim)["messages"]
    assert native[1]["tool_calls"] == [{"id": call.id, "function": {
        "name": "get_weather", "arguments": {"city": "simulated", "unit": "c"}}}]
    assert native[2] == {"role": "tool", "content": "21 degrees", "tool_call_id": call.id, "tool_name": "get_weather"}
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content


async def test_tool_calls_streamed_with_indexes_and_ids(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    _, client = ollama
    stream = await client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER, TIME], stream=True)
    chunks = [chunk async for chunk in stream]
    deltas = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.function.name if d.function else None) for d in deltas] == [(0, "get_weather"), (1, "get_time")]
    assert all(d.id and d.id.startswith("call_") for d in deltas) and deltas[0].id != deltas[1].id
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["tool_calls"]


async def test_tool_choice_none_does_not_offer_the_tools(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER], tool_choice="none")
    assert "tools" not in sent(sim) and reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
async def test_response_format_json_schema(ollama: tuple[EngineSimulator, openai.AsyncOpenAI], stream: bool) -> None:
    sim, client = ollama
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    if stream:
        chunks = await client.chat.completions.create(model=MODEL, messages=HI, response_format=fmt, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks])
    else:
        reply = await client.chat.completions.create(model=MODEL, messages=HI, response_format=fmt)
        text = reply.choices[0].message.content or ""
    assert sent(sim)["format"] == schema
    assert json.loads(text) == {"name": "simulated", "age": 1}


async def test_response_format_json_object(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.chat.completions.create(model=MODEL, messages=HI, response_format={"type": "json_object"})
    assert sent(sim)["format"] == "json"
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


async def test_inline_images_become_ollama_images(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    content = [{"type": "text", "text": "what is this?"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
               {"type": "text", "text": "be brief"}]
    reply = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content
    assert sent(sim)["messages"] == [{"role": "user", "content": "what is this?\nbe brief", "images": [PIXEL]}]


@pytest.mark.parametrize(("url", "kind"), [
    ("https://example.com/cat.png", "unsupported"),
    ("data:image/png;base64,%%%not-base64", "invalid_value"),
])
async def test_bad_image_urls_are_400_naming_the_field(
    ollama: tuple[EngineSimulator, openai.AsyncOpenAI], url: str, kind: str
) -> None:
    sim, client = ollama
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(openai.BadRequestError) as raised:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    error = raised.value.body
    assert isinstance(error, dict) and error["param"] == "messages[0].content[1].image_url.url"
    assert error["type"] == "invalid_request_error" and error["code"] == kind
    assert sim.requests_total == 0


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("chat", {"n": 2}, "n"),
    ("chat", {"logit_bias": {"50256": -100}}, "logit_bias"),
    ("chat", {"tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
    ("chat", {"tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
    ("chat", {"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ("chat", {"top_logprobs": 2}, "top_logprobs"),
    ("chat", {"functions": [WEATHER["function"]]}, "functions"),
    ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format.json_schema.schema"),
    ("chat", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
    # echo is not here: the gateway does it for every engine (completions/step.py)
    ("completion", {"best_of": 3}, "best_of"),
    ("completion", {"prompt": [1, 2, 3]}, "prompt"),
    ("completion", {"prompt": ["one", "two"]}, "prompt"),
    ("embedding", {"input": [[1, 2, 3]]}, "input"),
]


@pytest.mark.parametrize(("kind", "fields", "param"), REFUSED, ids=[r[2] for r in REFUSED])
async def test_what_ollama_cannot_do_is_refused_by_name(
    ollama: tuple[EngineSimulator, openai.AsyncOpenAI], kind: str, fields: dict[str, Any], param: str
) -> None:
    sim, client = ollama
    with pytest.raises(openai.BadRequestError) as raised:
        if kind == "chat":
            await client.chat.completions.create(**{"model": MODEL, "messages": HI, **fields})
        elif kind == "completion":
            await client.completions.create(**{"model": MODEL, "prompt": "once", **fields})
        else:
            await client.embeddings.create(**{"model": MODEL, **fields})
    error = raised.value.body
    assert isinstance(error, dict) and error["param"] == param and error["type"] == "invalid_request_error"
    assert sim.requests_total == 0  # refused by the gateway, never half-done by the engine


async def test_echo_is_done_by_the_gateway_for_ollama_too(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    answer = await client.completions.create(model=MODEL, prompt="once upon", echo=True, max_tokens=3)
    assert answer.choices[0].text.startswith("once upon") and len(answer.choices[0].text) > len("once upon")
    assert "echo" not in sent(sim)  # the engine never saw it


async def test_sampling_options_are_mapped(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    await client.chat.completions.create(
        model=MODEL, messages=[{"role": "developer", "content": "be terse"}, *HI], temperature=0.2, top_p=0.5,
        seed=7, stop="END", max_tokens=3, presence_penalty=0.1, frequency_penalty=0.3,
    )
    native = sent(sim)
    assert native["options"] == {"temperature": 0.2, "top_p": 0.5, "seed": 7, "stop": ["END"], "num_predict": 3,
                                 "presence_penalty": 0.1, "frequency_penalty": 0.3}
    assert native["messages"][0] == {"role": "system", "content": "be terse"}


async def test_chat_logprobs(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.chat.completions.create(model=MODEL, messages=HI, logprobs=True, top_logprobs=2)
    assert (sent(sim)["logprobs"], sent(sim)["top_logprobs"]) == (True, 2)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None and len(logprobs.content) == 5
    first = logprobs.content[0]
    assert first.logprob < 0 and len(first.top_logprobs) == 2 and first.top_logprobs[0].token == first.token
    assert "".join(t.token for t in logprobs.content) == reply.choices[0].message.content

    stream = await client.chat.completions.create(model=MODEL, messages=HI, logprobs=True, stream=True)
    tokens = [t.token async for c in stream if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.content or []]
    assert len(tokens) == 5


async def test_completion_logprobs(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.completions.create(model=MODEL, prompt="once upon", max_tokens=3, logprobs=2)
    assert (sent(sim)["logprobs"], sent(sim)["top_logprobs"]) == (True, 2)
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens is not None and len(logprobs.tokens) == 3
    assert "".join(logprobs.tokens) == reply.choices[0].text
    assert logprobs.text_offset == [0, len(logprobs.tokens[0]), len(logprobs.tokens[0]) + len(logprobs.tokens[1])]
    assert logprobs.top_logprobs is not None and all(len(top) == 2 for top in logprobs.top_logprobs)


def test_an_ollama_that_ignores_logprobs_is_detected() -> None:
    asked = {"logprobs": True}
    assert missing_logprobs(asked, {"message": {"content": "hi"}, "done": False})
    assert not missing_logprobs(asked, {"message": {"content": "hi"}, "logprobs": []})
    assert not missing_logprobs({}, {"message": {"content": "hi"}})


async def test_reasoning_effort_becomes_think(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    reply = await client.chat.completions.create(model=MODEL, messages=HI, reasoning_effort="low")
    assert sent(sim)["think"] == "low"
    assert (reply.choices[0].message.model_extra or {}).get("reasoning_content") == "simulated thinking"


async def test_embeddings_dimensions_and_base64(ollama: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = ollama
    result = await client.embeddings.create(model=MODEL, input=["a b", "c"], dimensions=8)  # SDK asks base64
    assert sent(sim)["dimensions"] == 8
    assert [len(item.embedding) for item in result.data] == [8, 8]
    floats = await client.embeddings.create(model=MODEL, input="a b", encoding_format="float")
    assert len(floats.data[0].embedding) == 64
