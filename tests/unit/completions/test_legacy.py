"""Legacy completions: llama-server's chat-shaped log probabilities in the legacy shape, echo done
by the gateway, and what cannot be done refused naming ``echo``."""

from __future__ import annotations

from typing import Any

import pytest

from inferlab.completions.step import LegacyCompletions
from inferlab.errors import InvalidRequest
from inferlab.pipeline import Call, Reply
from inferlab.types import Caller, InferenceResponse, RequestKind, StreamChunk

CONTENT = {"content": [
    {"id": 1, "token": " Paris", "logprob": -0.1, "top_logprobs": [{"token": " Paris", "logprob": -0.1},
                                                                    {"token": " Lyon", "logprob": -2.5}]},
    {"id": 2, "token": ".", "logprob": -0.4, "top_logprobs": [{"token": ".", "logprob": -0.4}]},
]}


def call_of(body: dict[str, Any]) -> Call:
    return Call(request_id="r", kind=RequestKind.COMPLETION, route="/v1/completions", model="m",
                body={"model": "m", "prompt": "The capital is", **body}, caller=Caller())


async def test_chat_shaped_logprobs_become_the_legacy_arrays() -> None:
    seen: list[dict[str, Any]] = []

    async def engine(call: Call) -> Reply:
        seen.append(call.body)
        return Reply(response=InferenceResponse({"choices": [{"index": 0, "text": " Paris.", "logprobs": CONTENT}]},
                                                None))

    reply = await LegacyCompletions()(call_of({"logprobs": 2}), engine)
    assert reply.response is not None
    assert reply.response.body["choices"][0]["logprobs"] == {
        "tokens": [" Paris", "."], "token_logprobs": [-0.1, -0.4],
        "top_logprobs": [{" Paris": -0.1, " Lyon": -2.5}, {".": -0.4}], "text_offset": [0, 6]}
    assert seen[0]["logprobs"] == 2


async def test_echo_puts_the_prompt_in_front_once_and_is_not_sent_to_the_engine() -> None:
    seen: list[dict[str, Any]] = []

    async def engine(call: Call) -> Reply:
        seen.append(call.body)

        async def rest() -> Any:
            yield StreamChunk({"choices": [{"index": 0, "text": " Paris"}]})

        return Reply(first=StreamChunk({"choices": [{"index": 0, "text": " in"}]}), chunks=rest())

    reply = await LegacyCompletions()(call_of({"echo": True, "stream": True}), engine)
    assert reply.first is not None and reply.chunks is not None
    texts = [reply.first.data["choices"][0]["text"]] + [c.data["choices"][0]["text"] async for c in reply.chunks]
    assert texts == ["The capital is in", " Paris"]
    assert "echo" not in seen[0]


@pytest.mark.parametrize("body", [{"echo": True, "logprobs": 1}, {"echo": True, "prompt": ["a", "b"]},
                                  {"echo": True, "n": 2}])
async def test_echo_that_cannot_be_done_is_a_400_naming_it(body: dict[str, Any]) -> None:
    async def engine(call: Call) -> Reply:
        raise AssertionError("never reaches the engine")

    with pytest.raises(InvalidRequest) as refused:
        await LegacyCompletions()(call_of(body), engine)
    assert refused.value.param == "echo"
