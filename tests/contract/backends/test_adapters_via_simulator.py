"""The gateway in-process, in front of the engine simulator speaking each protocol: the openai SDK
sees one API whatever engine protocol sits behind it, and engine faults map to the right errors.
What a protocol cannot do (JetStream: embeddings, a completion's suffix) is a 400 naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.config import load_settings
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.pytest_plugin import MakeSim

MODEL = "sim-model"
HI = [{"role": "user", "content": "hello there"}]


async def gateway_for(sim_url: str, backend: str, **model: object) -> TestServer:
    url = sim_url + "/v1" if backend == "openai" else sim_url
    if backend == "jetstream":
        model = {"chat_template": "llama3", **model}
    settings = load_settings(
        overrides={
            "models": [{"name": MODEL, "backend": backend, "url": url, **model}],
            "upstream": {"read_timeout_s": 1.0},
        }
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    return server


PROTOCOLS = ["openai", "ollama", "jetstream"]
WITHOUT_EMBEDDINGS_OR_SUFFIX = {"jetstream"}


@pytest.fixture(params=PROTOCOLS)
async def setup(
    request: pytest.FixtureRequest, make_sim: MakeSim
) -> AsyncIterator[tuple[EngineSimulator, openai.AsyncOpenAI]]:
    protocol = request.param
    sim = await make_sim(SimulatorScript(completion_tokens=5), model=MODEL, protocol=protocol)
    assert sim.base_url is not None
    server = await gateway_for(sim.base_url, protocol)
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=0, timeout=10)
    yield sim, client
    await client.close()
    await server.close()


async def test_chat(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    _, client = setup
    reply = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)
    assert reply.model == MODEL and reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens == 5 and reply.usage.prompt_tokens > 0


async def test_chat_stream_with_usage(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    _, client = setup
    stream = await client.chat.completions.create(
        model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 5


async def test_completion_and_stream(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    _, client = setup
    reply = await client.completions.create(model=MODEL, prompt="once upon", max_tokens=3)
    assert reply.choices[0].text and reply.usage is not None and reply.usage.completion_tokens == 3
    stream = await client.completions.create(model=MODEL, prompt="once upon", max_tokens=3, stream=True)
    assert "".join([c.choices[0].text async for c in stream if c.choices])


async def test_suffix_passes_to_engines_that_take_it(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    if sim.protocol in WITHOUT_EMBEDDINGS_OR_SUFFIX:
        with pytest.raises(openai.BadRequestError, match="suffix"):
            await client.completions.create(model=MODEL, prompt="def f(", suffix="\n", max_tokens=2)
        return
    reply = await client.completions.create(model=MODEL, prompt="def f(", suffix="\n", max_tokens=2)
    assert reply.choices[0].text


async def test_embeddings(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    if sim.protocol in WITHOUT_EMBEDDINGS_OR_SUFFIX:
        with pytest.raises(openai.BadRequestError, match="embeddings"):
            await client.embeddings.create(model=MODEL, input=["a b", "c"])
        return
    result = await client.embeddings.create(model=MODEL, input=["a b", "c"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0


async def test_engine_5xx_is_a_502(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    sim.script.fail_status, sim.script.fail_next = 500, 1
    with pytest.raises(openai.APIStatusError) as raised:
        await client.chat.completions.create(model=MODEL, messages=HI)
    assert raised.value.status_code == 502
    assert (await client.chat.completions.create(model=MODEL, messages=HI)).choices


async def test_engine_4xx_keeps_its_status(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    sim.script.fail_status, sim.script.fail_next = 400, 1
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=HI)


async def test_hung_engine_is_a_504(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    sim.script.hang = True
    with pytest.raises(openai.APIStatusError) as raised:
        await client.chat.completions.create(model=MODEL, messages=HI)
    assert raised.value.status_code == 504


async def test_engine_dying_mid_stream_ends_with_one_error_event(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    sim.script.cut_after_tokens, sim.script.completion_tokens = 2, 10
    stream = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            received.append(chunk)
    assert len(received) >= 1
    assert "engine" in raised.value.message


async def test_engine_dying_before_first_byte_is_a_502(setup: tuple[EngineSimulator, openai.AsyncOpenAI]) -> None:
    sim, client = setup
    sim.script.cut_after_tokens = 0
    with pytest.raises(openai.APIStatusError) as raised:
        await client.chat.completions.create(model=MODEL, messages=HI)
    assert raised.value.status_code == 502
