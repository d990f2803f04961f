"""JetStream's adapter pieces: the request it sends is exactly a ``DecodeRequest``, the stream of
concatenated JSON objects is split whatever the block boundaries, stop sequences never leak, and
the simulator refuses what JetStream's server refuses."""

from __future__ import annotations

import json

import aiohttp
import pytest

from inferlab.backends.jetstream import JetStreamBackend
from inferlab.backends.jetstream_request import chat_prompt, decode_request
from inferlab.backends.jetstream_stream import JsonObjectStream, StopScanner, samples
from inferlab.errors import InvalidRequest, UnsupportedFeature, UpstreamError
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.pytest_plugin import MakeSim
from inferlab.types import InferenceRequest, RequestKind

HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]


def test_the_request_is_a_decode_request_and_nothing_else() -> None:
    body = {"messages": HI, "max_tokens": 7, "temperature": 0.2, "top_p": 0.9, "seed": 1, "stream": True}
    assert decode_request(body, chat=True, template="plain") == {
        "max_tokens": 7, "text_content": {"text": "system: Be brief.\nuser: hello\nassistant:"}}
    assert decode_request({"prompt": ["once"]}, chat=False, template="plain")["max_tokens"] == 256
    for refused in ({"suffix": "x"}, {"logprobs": True}, {"n": 2}, {"tools": [{"type": "function"}]}):
        with pytest.raises(UnsupportedFeature):
            decode_request({"prompt": "a", **refused}, chat=False, template="plain")
    with pytest.raises(UnsupportedFeature, match="text only"):
        decode_request({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, chat=True,
                       template="plain")
    with pytest.raises(InvalidRequest):
        decode_request({"messages": []}, chat=True, template="plain")


def test_chat_templates() -> None:
    assert chat_prompt(HI, "llama3") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert chat_prompt(HI, "gemma") == "<start_of_turn>user\nBe brief.\n\nhello<end_of_turn>\n<start_of_turn>model\n"
    assert chat_prompt(HI, "chatml").endswith("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")


def test_concatenated_json_objects_split_at_any_byte() -> None:
    messages = [{"streamContent": {"samples": [{"text": f" wörd{i}", "tokenIds": [i]}]}} for i in range(3)]
    body = b"".join(json.dumps(m, indent=2, ensure_ascii=False).encode() for m in messages)
    for size in (1, 2, 7, len(body)):
        parser = JsonObjectStream("js", 1024)
        got = [o for start in range(0, len(body), size) for o in parser.feed(body[start:start + size])]
        parser.end()
        assert got == messages
    assert samples("js", {"stream_content": {"samples": [{"text": "a", "token_ids": [1, 2]}]}}) == ("a", 2)
    assert samples("js", {"initialContent": {}}) is None
    parser = JsonObjectStream("js", 1024)
    parser.feed(body[:-1])
    with pytest.raises(UpstreamError, match="before it finished"):
        parser.end()
    with pytest.raises(UpstreamError, match="longer than"):
        JsonObjectStream("js", 16).feed(b'{"streamContent": {"samples": [')
    with pytest.raises(UpstreamError, match="not a sequence of JSON objects"):
        JsonObjectStream("js", 1024).feed(b"data: {}\n\n")


def test_stop_sequences_are_cut_even_across_pieces() -> None:
    scanner = StopScanner(("END",))
    sent = [scanner.push(piece) for piece in ("one E", "N", "Dtwo")]
    assert "".join(sent) == "one " and scanner.stopped
    scanner = StopScanner(("END",))
    assert scanner.push("say E") == "say " and scanner.flush() == "E"


async def test_against_the_simulated_server(make_sim: MakeSim) -> None:
    sim = await make_sim(SimulatorScript(completion_tokens=6), protocol="jetstream")  # " This is simulated output from the"
    assert sim.base_url is not None
    async with aiohttp.ClientSession() as session:
        async with session.post(sim.base_url + "/v1/generate", json={"max_tokens": 2, "temperature": 0.5}) as answer:
            assert answer.status == 422  # JetStream's pydantic model forbids extra fields
            assert (await answer.json())["detail"][0]["loc"] == ["body", "temperature"]
        backend = JetStreamBackend("js", sim.base_url, session)
        assert (await backend.health()).healthy
        request = InferenceRequest(RequestKind.CHAT, "m", {"messages": HI, "max_tokens": 8, "temperature": 0.3,
                                                           "stop": [" from"]}, "req-1")
        reply = await backend.complete(request)
        assert sim.last_request == {"max_tokens": 8, "text_content": {"text": chat_prompt(HI, "plain")}}
        assert reply.body["choices"][0]["message"]["content"] == " This is simulated output"
        assert reply.body["choices"][0]["finish_reason"] == "stop"
        long = await backend.complete(InferenceRequest(RequestKind.COMPLETION, "m", {"prompt": "a b", "max_tokens": 3},
                                                       "req-2"))
        assert long.body["choices"][0]["finish_reason"] == "length" and long.usage is not None
        assert long.usage.completion_tokens == 3 and long.body["usage"]["estimated"] is True
        chunks = [c.data async for c in backend.stream(InferenceRequest(RequestKind.CHAT, "m", {"messages": HI},
                                                                        "req-3", stream=True))]
        assert len(chunks) == 7 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_the_simulator_speaks_jetstream_only_when_asked() -> None:
    with pytest.raises(ValueError, match="jetstream"):
        EngineSimulator(protocol="grpc")  # type: ignore[arg-type]
