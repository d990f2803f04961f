"""A chat completion stream re-told as Responses API events, in the documented order:

``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``…, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done`` (then each function call as its
own item), ``response.completed`` — each with its ``sequence_number``. The completed response is
handed to ``on_complete`` (stored, for ``previous_response_id``) before its event is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from inferlab.responses.render import Turn, output_text
from inferlab.types import StreamChunk, Usage

Complete = Callable[[Turn, Usage | None], Awaitable[dict[str, Any]]]  # the final response object


def chunk_datas(chunk: StreamChunk) -> list[dict[str, Any]]:
    """The chat chunks in one stream chunk (a framed run holds several)."""
    if chunk.framed is not None:
        return [orjson.loads(line[6:]) for line in chunk.framed.split(b"\n") if line.startswith(b"data: {")]
    return [chunk.data]


class ResponseEvents:
    """An async iterator of ``StreamChunk``s, each one Responses event (pre-framed SSE)."""

    def __init__(self, first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], started: dict[str, Any],
                 on_complete: Complete) -> None:
        self._first = first
        self._chunks = chunks
        self._started = started
        self._on_complete = on_complete
        self._pending: list[StreamChunk] = []
        self._sequence = 0
        self._turn = Turn()
        self._calls: dict[int, dict[str, Any]] = {}
        self._usage: Usage | None = None
        self._opened = False
        self._done = False
        self._emit("response.created", {"response": started})
        self._emit("response.in_progress", {"response": started})

    def _emit(self, kind: str, payload: dict[str, Any], usage: Usage | None = None) -> None:
        data = orjson.dumps({"type": kind, "sequence_number": self._sequence, **payload})
        self._sequence += 1
        self._pending.append(StreamChunk(framed=b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n",
                                         usage=usage))

    def __aiter__(self) -> ResponseEvents:
        return self

    async def __anext__(self) -> StreamChunk:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            await self._pull()
        return self._pending.pop(0)

    async def _pull(self) -> None:
        if self._first is not None:
            chunk, self._first = self._first, None
        else:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                await self._finish()
                return
        if chunk.usage is not None:
            self._usage = chunk.usage
        for data in chunk_datas(chunk):
            self._absorb(data)

    def _open_message(self) -> None:
        if not self._opened:
            self._opened = True
            turn = self._turn
            self._emit("response.output_item.added", {"output_index": 0, "item": turn.message_item("in_progress")})
            self._emit("response.content_part.added", {"item_id": turn.message_id, "output_index": 0,
                                                       "content_index": 0, "part": output_text("")})

    def _absorb(self, data: dict[str, Any]) -> None:
        for choice in data.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self._open_message()
                self._turn.text += text
                self._emit("response.output_text.delta", {"item_id": self._turn.message_id, "output_index": 0,
                                                          "content_index": 0, "delta": text, "logprobs": []})
            for call in delta.get("tool_calls") or ():
                slot = self._calls.setdefault(int(call.get("index", 0)), {"id": None, "type": "function",
                                                                          "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self._turn.finish_reason = choice["finish_reason"]

    async def _finish(self) -> None:
        turn = self._turn
        turn.tool_calls = [self._calls[index] for index in sorted(self._calls)]
        index = 0
        if turn.text or not turn.tool_calls:
            self._open_message()
            self._emit("response.output_text.done", {"item_id": turn.message_id, "output_index": 0,
                                                     "content_index": 0, "text": turn.text, "logprobs": []})
            self._emit("response.content_part.done", {"item_id": turn.message_id, "output_index": 0,
                                                      "content_index": 0, "part": output_text(turn.text)})
            self._emit("response.output_item.done", {"output_index": 0, "item": turn.message_item()})
            index = 1
        for offset, item in enumerate(turn.call_items()):
            self._emit("response.output_item.added", {"output_index": index + offset,
                                                      "item": {**item, "arguments": "", "status": "in_progress"}})
            self._emit("response.function_call_arguments.done", {"item_id": item["id"], "output_index": index + offset,
                                                                 "arguments": item["arguments"]})
            self._emit("response.output_item.done", {"output_index": index + offset, "item": item})
        final = await self._on_complete(turn, self._usage)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        self._emit(kind, {"response": final}, usage=self._usage)
        self._done = True

    async def aclose(self) -> None:
        self._done = True
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()
