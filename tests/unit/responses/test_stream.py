"""A chat stream re-told as Responses events: the documented order, sequence numbers, the final
response stored before its event, function calls as their own items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from inferlab.responses.render import Turn, output_text
from inferlab.responses.stream import ResponseEvents
from inferlab.types import StreamChunk, Usage


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> StreamChunk:
    return StreamChunk({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                         "finish_reason": finish}]})


async def chunks(*items: StreamChunk) -> AsyncIterator[StreamChunk]:
    for item in items:
        yield item


def events_of(collected: list[StreamChunk]) -> list[dict[str, Any]]:
    found = []
    for chunk in collected:
        assert chunk.framed is not None
        head, data = chunk.framed.decode().rstrip("\n").split("\n")
        event = orjson.loads(data.removeprefix("data: "))
        assert head == "event: " + event["type"]
        found.append(event)
    return found


async def run(*items: StreamChunk) -> tuple[list[dict[str, Any]], list[tuple[Turn, Usage | None]], StreamChunk]:
    completed: list[tuple[Turn, Usage | None]] = []

    async def complete(turn: Turn, usage: Usage | None) -> dict[str, Any]:
        completed.append((turn, usage))
        return {"id": "resp_1", "status": "completed", "output": turn.output()}

    stream = ResponseEvents(None, chunks(*items), {"id": "resp_1", "status": "in_progress"}, complete)
    collected = [chunk async for chunk in stream]
    return events_of(collected), completed, collected[-1]


async def test_text_streams_in_the_documented_order() -> None:
    usage = Usage(7, 2)
    framed = StreamChunk(framed=b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
                                b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n', events=2)
    events, completed, last = await run(chat_chunk({"role": "assistant", "content": "Hel"}), framed,
                                        StreamChunk({"choices": [], "usage": usage.to_openai()}, usage=usage,
                                                    has_content=False))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["delta"] for e in events if e["type"].endswith(".delta")] == ["Hel", "lo"]
    item_id = events[2]["item"]["id"]
    assert all(e["item_id"] == item_id for e in events[3:8])
    assert events[6]["text"] == "Hello" and events[7]["part"] == output_text("Hello")
    assert completed[0][0].text == "Hello" and completed[0][1] == usage and completed[0][0].finish_reason == "stop"
    assert last.usage == usage  # the API meters the call from the last event


async def test_function_calls_become_items_after_the_text() -> None:
    events, completed, _ = await run(
        chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "add", "arguments": '{"a"'}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "tool_calls"))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    item = events[4]["item"]
    assert item["type"] == "function_call" and item["call_id"] == "call_1" and item["arguments"] == '{"a": 1}'
    assert completed[0][0].history()["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 1}'}
