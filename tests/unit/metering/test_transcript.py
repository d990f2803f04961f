"""The transcript keeps what an answer said — per choice, content, reasoning and tool calls —
from the SSE events the client got (framed runs too), parsing only long streams as they go."""

from __future__ import annotations

import orjson

from inferlab.metering.transcript import Transcript


def sse(*chunks: dict[str, object]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)


def delta(index: int, **fields: object) -> dict[str, object]:
    return {"object": "chat.completion.chunk", "choices": [{"index": index, "delta": fields, "finish_reason": None}]}


def test_chat_deltas_of_several_choices_and_tool_calls() -> None:
    transcript = Transcript()
    transcript(sse(delta(0, role="assistant", content="Hel"), delta(1, content="Bon")))  # a framed run: one tap
    transcript(sse(delta(0, content="lo"), delta(1, reasoning_content="think", content="jour")))
    transcript(sse(delta(0, tool_calls=[{"index": 0, "function": {"name": "get", "arguments": '{"a":'}}])))
    transcript(sse(delta(0, tool_calls=[{"index": 0, "function": {"arguments": "1}"}}])))
    transcript(sse({"choices": [], "usage": {"prompt_tokens": 1}}) + b"data: [DONE]\n\n")
    assert sorted(transcript.texts()) == sorted(["Hello", "get", '{"a":1}', "Bonjour", "think"])  # apart


def test_completions_text_and_an_error_event_that_ends_a_stream() -> None:
    transcript = Transcript()
    for word in ("one", " two", " three"):
        transcript(sse({"object": "text_completion", "choices": [{"index": 0, "text": word, "finish_reason": None}]}))
    transcript(sse({"error": {"message": "engine failed"}}))
    assert transcript.texts() == ["one two three"]


def test_long_streams_are_kept_as_text_not_as_events() -> None:
    transcript = Transcript(compact_bytes=4096)
    for i in range(2000):
        transcript(sse(delta(0, content=f" w{i}")))
        assert transcript._size <= 4096 + 200  # the events held never outgrow the bound
    assert transcript.texts() == ["".join(f" w{i}" for i in range(2000))]


def test_a_whole_answer_gives_its_choices_text() -> None:
    transcript = Transcript()
    transcript.add_choices({"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "chat answer"}},
        {"index": 1, "message": {"role": "assistant", "content": None,
                                 "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}},
    ]})
    assert sorted(transcript.texts()) == ["chat answer", "f", "{}"]
    completion = Transcript()
    completion.add_choices({"choices": [{"index": 0, "text": "completed"}]})
    assert completion.texts() == ["completed"]
