"""The OpenAI-compatible stream reader over a real connection: chunks in order, bursts forwarded
as one framed chunk, and errors raised only after the chunks that came before them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.openai_stream import EngineChunkStream
from inferlab.errors import InferLabError, UpstreamTimeout
from inferlab.router.idle import IdleWatch
from inferlab.types import BEHIND, FORWARDED, REFUSED, InferenceRequest, RequestKind, StreamChunk

MODEL = "m"


@contextlib.asynccontextmanager
async def engine_client() -> AsyncIterator[EngineClient]:
    client = EngineClient()
    try:
        yield client
    finally:
        await client.close()


def event(content: str, *, finish: str | None = None, model: str = MODEL, **extra: Any) -> bytes:
    chunk = {"object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}], **extra}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def read(url: str, idle_s: float | None = None) -> list[StreamChunk]:
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    async with engine_client() as session:
        stream = EngineChunkStream(session, url, b"{}", {}, backend="e", request=request, max_line_bytes=4096)
        try:
            chunks = [await anext(stream)]  # the first chunk, as the failover reads it
            if idle_s is not None:
                stream.watch_idle(IdleWatch(idle_s, "e"))
            chunks += [chunk async for chunk in stream]
            return chunks
        finally:
            await stream.aclose()


def contents(chunks: list[StreamChunk]) -> list[str]:
    """The text of every event the client would receive, in order."""
    texts = []
    for chunk in chunks:
        for line in chunk.event().split(b"\n\n"):
            if line:
                texts.append(orjson.loads(line[6:])["choices"][0]["delta"]["content"])
    return texts


async def test_a_burst_travels_as_one_framed_chunk(serve_bytes: Any) -> None:
    body = b"".join(event(str(i)) for i in range(5)) + event("!", finish="stop") + b"data: [DONE]\n\n"
    chunks = await read(serve_bytes(body, piece=len(body)))  # everything in one write
    assert contents(chunks) == ["0", "1", "2", "3", "4", "!"]
    assert chunks[0].framed is None  # the first is parsed: it shows the engine names the model as asked
    assert chunks[1].framed is not None and chunks[1].events == 5
    assert sum(chunk.events for chunk in chunks) == 6


async def test_whole_plain_blocks_are_forwarded_as_they_came(serve_bytes: Any) -> None:
    burst = event("2") + event("3")
    writes: list[bytes | None] = [event("0"), event("1"), burst, event("4", finish="stop"), b"data: [DONE]\n\n"]
    chunks = await read(serve_bytes(writes))
    assert contents(chunks) == ["0", "1", "2", "3", "4"]
    assert chunks[1].framed == event("1") and chunks[2].framed == burst and chunks[2].events == 2


@pytest.mark.parametrize("tricky", [
    'data: {"x": 1}', '"usage"', "}\n\ndata: {", '{"error": "no"}', "choices", "[DONE]",
])
async def test_content_that_looks_like_framing_arrives_intact(serve_bytes: Any, tricky: str) -> None:
    writes: list[bytes | None] = [event("0"), event(tricky) + event("x"), event(tricky, finish="stop")]
    assert contents(await read(serve_bytes(writes))) == ["0", tricky, "x", tricky]


async def test_an_engine_silent_mid_stream_is_ended_by_the_idle_bound(serve_bytes: Any) -> None:
    chunks: list[StreamChunk] = []
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    async with engine_client() as session:
        stream = EngineChunkStream(session, serve_bytes([event("0"), event("1"), None]), b"{}", {}, backend="e",
                                   request=request, max_line_bytes=4096)
        stream.watch_idle(IdleWatch(0.2, "e"))
        with pytest.raises(UpstreamTimeout):
            async for chunk in stream:
                chunks.append(chunk)
        await stream.aclose()
    assert contents(chunks) == ["0", "1"]


async def test_events_split_anywhere_arrive_whole(serve_bytes: Any) -> None:
    body = b"".join(event(str(i)) for i in range(8)) + b"data: [DONE]\n\n"
    chunks = await read(serve_bytes(body, piece=3))
    assert contents(chunks) == [str(i) for i in range(8)]


async def test_a_renamed_model_and_usage_are_parsed(serve_bytes: Any) -> None:
    body = (event("a", model="engine-name") + event("b", finish="stop", model="engine-name")
            + b'data: {"object":"chat.completion.chunk","model":"m","choices":[],'
              b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
            + b"data: [DONE]\n\n")
    chunks = await read(serve_bytes(body, piece=len(body)))
    assert [chunk.data["model"] for chunk in chunks] == [MODEL, MODEL, MODEL]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


@pytest.mark.parametrize("bad", [
    b'data: {"error": {"message": "boom"}}\n\n',
    b"data: not json\n\n",
    b"event: progress\ndata: {}\n\n",
])
async def test_chunks_before_a_broken_event_are_delivered_then_its_error(serve_bytes: Any, bad: bytes) -> None:
    body = event("a") + event("b") + bad + event("never")
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    received: list[StreamChunk] = []
    async with engine_client() as session:
        stream = EngineChunkStream(session, serve_bytes(body, piece=len(body)), b"{}", {},
                                   backend="e", request=request, max_line_bytes=4096)
        with pytest.raises(InferLabError) as raised:
            async for chunk in stream:
                received.append(chunk)
        await stream.aclose()
    assert contents(received) == ["a", "b"]
    assert raised.value.status == 502 and "boom" not in raised.value.message


async def test_a_body_without_done_is_complete_only_when_a_choice_finished(serve_bytes: Any) -> None:
    assert contents(await read(serve_bytes(event("a") + event("b", finish="stop")))) == ["a", "b"]
    with pytest.raises(InferLabError) as raised:
        await read(serve_bytes(event("a") + event("b")))
    assert raised.value.code == "incomplete_stream"


async def test_closing_before_reading_sends_nothing(serve_bytes: Any) -> None:
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    async with engine_client() as session:
        stream = EngineChunkStream(session, "http://127.0.0.1:9/never", b"{}", {}, backend="e",
                                   request=request, max_line_bytes=4096)
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


# -- pushed to a sink: plain chunks go out from the connection's callback ------------------------


class RecordingSink:
    """A ``ChunkSink`` that logs what it takes into the log the consumer's loop also writes to,
    answering ``answer``; ``drained`` waits for ``caught_up``."""

    def __init__(self, log: list[bytes], answer: int = FORWARDED) -> None:
        self.log = log
        self.answer = answer
        self.taken: list[bytes] = []
        self.caught_up = asyncio.Event()
        self.caught_up.set()
        self.drains = 0

    def forward(self, framed: bytes, events: int) -> int:
        assert framed.count(b"\n\n") == events
        if self.answer != REFUSED:
            self.taken.append(framed)
            self.log.append(framed)
        return self.answer

    async def drained(self) -> None:
        self.drains += 1
        await self.caught_up.wait()


async def read_pushing(url: str, sink_answer: int = FORWARDED, idle_s: float | None = None,
                       sink: RecordingSink | None = None) -> tuple[list[bytes], RecordingSink]:
    """Every event in the order the client would get it, from the sink and the loop alike."""
    log: list[bytes] = []
    sink = sink or RecordingSink(log, sink_answer)
    sink.log = log
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    async with engine_client() as session:
        stream = EngineChunkStream(session, url, b"{}", {}, backend="e", request=request, max_line_bytes=4096)
        try:
            log.append((await anext(stream)).event())
            if idle_s is not None:
                stream.watch_idle(IdleWatch(idle_s, "e"))
            stream.forward_to(sink)
            async for chunk in stream:
                log.append(chunk.event())
            return log, sink
        finally:
            await stream.aclose()


def texts(log: list[bytes]) -> list[str]:
    return [orjson.loads(line[6:])["choices"][0]["delta"].get("content", "")
            for framed in log for line in framed.split(b"\n\n") if line and b'"choices":[]' not in line]


USAGE = (b'data: {"object":"chat.completion.chunk","model":"m","choices":[],'
         b'"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n')


async def test_plain_chunks_go_to_the_sink_and_the_rest_through_the_loop_in_order(serve_bytes: Any) -> None:
    writes: list[bytes | None] = [event("0"), event("1"), event("2") + event("3"), event("4", finish="stop"),
                                  USAGE, b"data: [DONE]\n\n"]
    log, sink = await read_pushing(serve_bytes(writes))
    assert texts(log) == ["0", "1", "2", "3", "4"]
    assert sink.taken == [event("1"), event("2") + event("3"), event("4", finish="stop")]
    assert log[-1] == USAGE  # usage is never pushed: the loop counts it


async def test_a_sink_that_refuses_leaves_every_chunk_to_the_loop(serve_bytes: Any) -> None:
    writes: list[bytes | None] = [event("0"), event("1"), event("2", finish="stop"), b"data: [DONE]\n\n"]
    log, sink = await read_pushing(serve_bytes(writes), sink_answer=REFUSED)
    assert texts(log) == ["0", "1", "2"] and sink.taken == []


async def test_a_client_behind_holds_the_engine_until_it_caught_up(serve_bytes: Any) -> None:
    writes: list[bytes | None] = [event(str(i)) for i in range(6)] + [event("6", finish="stop"), b"data: [DONE]\n\n"]
    sink = RecordingSink([], answer=BEHIND)
    sink.caught_up.clear()
    reading = asyncio.create_task(read_pushing(serve_bytes(writes), sink=sink))
    await asyncio.sleep(0.3)  # the engine sends every 20 ms: all of it would be out by now
    assert not reading.done()
    assert sink.taken == [event("1")] and sink.drains == 1  # one taken, then nothing until the client drains
    sink.answer = FORWARDED
    sink.caught_up.set()
    log, _ = await asyncio.wait_for(reading, 5)
    assert texts(log) == [str(i) for i in range(7)]


async def test_pushed_chunks_keep_the_idle_bound_quiet_and_silence_still_ends_it(serve_bytes: Any) -> None:
    steady: list[bytes | None] = [event(str(i)) for i in range(15)] + [event("!", finish="stop")]
    log, sink = await read_pushing(serve_bytes(steady), idle_s=0.1)  # 0.3 s of chunks 20 ms apart
    assert len(texts(log)) == 16 and len(sink.taken) == 15
    with pytest.raises(UpstreamTimeout):
        await read_pushing(serve_bytes([event("0"), event("1"), event("2"), None]), idle_s=0.2)


async def test_a_pushed_body_without_done_is_complete_only_when_a_choice_finished(serve_bytes: Any) -> None:
    log, _ = await read_pushing(serve_bytes([event("a"), event("b"), event("c", finish="stop")]))
    assert texts(log) == ["a", "b", "c"]
    with pytest.raises(InferLabError) as raised:
        await read_pushing(serve_bytes([event("a"), event("b"), event("c")]))
    assert raised.value.code == "incomplete_stream"


# -- the first block relayed: offered to a first sink from the connection's callback --------------


class FirstRecorder:
    """A ``FirstSink`` that records what it is offered, taking it when ``accept``."""

    def __init__(self, *, accept: bool = True) -> None:
        self.accept = accept
        self.offered: list[bytes] = []
        self.sent = False

    def first(self, framed: bytes) -> bool:
        self.offered.append(framed)
        self.sent = self.accept
        return self.accept


async def read_relaying(url: str, recorder: FirstRecorder) -> list[StreamChunk]:
    request = InferenceRequest(RequestKind.CHAT, MODEL, {}, "req-1", True)
    async with engine_client() as session:
        stream = EngineChunkStream(session, url, b"{}", {}, backend="e", request=request, max_line_bytes=4096)
        stream.relay_first(recorder)
        try:
            return [await anext(stream)] + [chunk async for chunk in stream]
        finally:
            await stream.aclose()


FIRST_BLOCK = event("0") + event("1")  # as llama-server sends them: the role chunk and the first token together


async def test_a_first_block_of_plain_events_is_relayed_whole_and_handed_on_as_sent(serve_bytes: Any) -> None:
    writes: list[bytes | None] = [FIRST_BLOCK, event("2"), event("3", finish="stop"), b"data: [DONE]\n\n"]
    recorder = FirstRecorder()
    chunks = await read_relaying(serve_bytes(writes), recorder)
    assert recorder.offered == [FIRST_BLOCK]
    assert chunks[0].framed == FIRST_BLOCK and chunks[0].events == 2  # not sent twice: the renderer knows it
    assert contents(chunks) == ["0", "1", "2", "3"]
    assert all(chunk.framed is not None for chunk in chunks[1:])  # the model was seen named as asked


async def test_a_first_sink_that_declines_leaves_the_stream_as_without_one(serve_bytes: Any) -> None:
    writes: list[bytes | None] = [FIRST_BLOCK, event("2", finish="stop"), b"data: [DONE]\n\n"]
    recorder = FirstRecorder(accept=False)
    chunks = await read_relaying(serve_bytes(writes), recorder)
    assert recorder.offered == [FIRST_BLOCK]
    assert chunks[0].framed is None  # parsed, as every first chunk is without a sink
    assert contents(chunks) == ["0", "1", "2"]


@pytest.mark.parametrize(("first", "piece", "said"), [
    (event("0", model="engine-own-name") + event("1"), 0, ["0", "1", "2"]),  # renamed: the client gets its name
    (USAGE + event("0"), 0, ["0", "2"]),  # usage is counted by the loop
    (FIRST_BLOCK, 7, ["0", "1", "2"]),  # the first block is part of an event
], ids=["renamed-model", "usage", "partial-event"])
async def test_a_first_block_not_handed_on_as_it_came_is_not_offered(serve_bytes: Any, first: bytes, piece: int,
                                                                     said: list[str]) -> None:
    rest = event("2", finish="stop") + b"data: [DONE]\n\n"
    url = serve_bytes(first + rest, piece=piece) if piece else serve_bytes([first, rest])
    recorder = FirstRecorder()
    chunks = await read_relaying(url, recorder)
    assert recorder.offered == []
    assert texts([chunk.event() for chunk in chunks]) == said
    assert {orjson.loads(line[6:])["model"] for chunk in chunks for line in chunk.event().split(b"\n\n") if line} == {MODEL}
