"""One streamed completion from an OpenAI-compatible engine, as ``StreamChunk``s — one object.

This is the per-token path, so it is one class, not a stack of generators: each ``__anext__``
either hands out a chunk already parsed, or takes whatever the engine has sent since (``take``,
awaiting ``arrival()`` only when nothing is there; often several events when the gateway is
busy), parses its SSE framing
(``SseParser``) and turns its events into chunks.

Events that look like plain chunks — one JSON object naming choices, without usage or error —
once a parsed chunk showed the engine names the model as the client did, are forwarded as the
engine's bytes, unparsed, and consecutive ones travel together as one pre-framed chunk
(``StreamChunk.framed``), so a burst of tokens costs the client one write. That path checks a
chunk's framing, not every byte of its JSON. Anything else (usage, errors, a renamed model) is
parsed and checked in full.

Given a ``ChunkSink`` (``forward_to``), such whole plain blocks skip ``__anext__`` altogether: the
engine connection hands them over as they arrive (``_pushed``) and the sink writes them to the
client; a sink whose client is behind stops the push until ``__anext__`` has waited for it
(``_catch_up``). Given a ``FirstSink`` before it opens (``relay_first``), the answer's first block,
when it is nothing but plain chunk events and the first names the model as the client did, is
offered to it from the connection's callback too (``_first_block``); a block it took comes out
of ``__anext__`` as the first chunk, as it was sent.

A body that ends without ``[DONE]`` is complete only when a choice finished at its end (some
engines omit ``[DONE]``); anything else, and any malformed event, is an ``InferLabError`` raised
after the chunks that came before it.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from inferlab.backends.engine_client import EngineClient, EngineResponse
from inferlab.backends.http import (
    SseParser,
    incomplete_stream,
    malformed_stream,
    raise_for_engine_status,
    stream_error,
    translate_client_error,
)
from inferlab.errors import InferLabError
from inferlab.types import BEHIND, REFUSED, ChunkSink, FirstSink, InferenceRequest, StreamChunk, Usage

if TYPE_CHECKING:
    from inferlab.router.idle import IdleWatch

_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')  # a chunk that ends a choice (null does not)
_DONE = b"[DONE]"


class EngineChunkStream:
    """``AsyncIterator[StreamChunk]`` over one POST to an engine; ``aclose()`` releases it."""

    __slots__ = (
        "_backend", "_behind", "_between_events", "_body", "_client", "_done", "_first_sink", "_headers", "_last",
        "_max_line_bytes", "_parser", "_ready", "_relayed", "_request", "_response", "_secrets", "_sink", "_url",
        "_verbatim", "_watch",
    )

    def __init__(
        self, client: EngineClient, url: str, body: bytes, headers: dict[str, str], *,
        backend: str, request: InferenceRequest, max_line_bytes: int, secrets: tuple[str | None, ...] = (),
    ) -> None:
        self._client = client
        self._url = url
        self._body = body
        self._headers = headers
        self._backend = backend
        self._request = request
        self._secrets = secrets
        self._parser = SseParser(backend, max_line_bytes)
        self._max_line_bytes = max_line_bytes
        self._between_events = True  # the parser holds no partial line or event: as of its last feed
        self._response: EngineResponse | None = None
        self._ready: deque[StreamChunk] = deque()
        self._done = False
        self._verbatim = False  # the engine was seen to name the model as the client did
        self._last: tuple[bytes, bytes] = (b"", b"")  # the last two payloads, for a stream without [DONE]
        self._watch: IdleWatch | None = None
        self._sink: ChunkSink | None = None
        self._behind = False  # the sink's client fell behind: pushing stopped until it drains
        self._first_sink: FirstSink | None = None
        self._relayed: tuple[int, int] | None = None  # the first block went to the first sink: its bytes, events

    def watch_idle(self, watch: IdleWatch) -> None:
        """Report each wait for the engine to ``watch`` from now on (the stream's idle bound)."""
        self._watch = watch

    def relay_first(self, sink: FirstSink) -> None:
        """Offer the first event to ``sink`` as it arrives (``FirstSink``); before the first ``anext``."""
        self._first_sink = sink

    def _first_block(self, block: bytes) -> bool:
        """The connection's callback for the answer's first body block (a 200's): offered to the
        first sink when it is nothing but whole plain chunk events and the first of them names the
        model as the client did (the checks ``_chunk`` makes to keep a chunk verbatim): exactly
        the bytes ``__anext__`` would hand on. Queued either way (False); a block the sink took
        comes out of ``__anext__`` as the first chunk, framed as it was sent (``_relayed``)."""
        sink, self._first_sink = self._first_sink, None
        if sink is None or not (events := self._plain_events(block)):
            return False
        try:
            chunk = orjson.loads(block[6:block.index(b"\n\n")])  # the first event's data: {...}
        except orjson.JSONDecodeError:
            return False
        if (isinstance(chunk, dict) and chunk.get("model") == self._request.model and chunk.get("usage") is None
                and not chunk.get("error") and chunk.get("object") != "error" and isinstance(chunk.get("choices"), list)
                and sink.first(block)):
            self._verbatim = True
            self._relayed = (len(block), events)
        return False

    def forward_to(self, sink: ChunkSink) -> None:
        """From now on, hand plain chunks to ``sink`` as they arrive (``ChunkSink``); what it does
        not take, and everything else, still comes out of ``__anext__``."""
        self._sink = sink
        if self._response is not None and not self._done:
            self._response.push(self._pushed)

    def _pushed(self, block: bytes) -> bool:
        """The connection's callback: whether ``block`` went to the sink (else it is queued)."""
        if not (self._verbatim and self._between_events) or self._ready or self._parser.failure is not None:
            return False
        events = self._plain_events(block)
        sink = self._sink
        if not events or sink is None:
            return False
        answer = sink.forward(block, events)
        if answer == REFUSED:
            return False
        self._last = (self._last[1], block)
        if self._watch is not None:
            self._watch.heard()
        if answer == BEHIND:  # stop here; the consumer's task waits for the client, then resumes
            self._behind = True
            response = self._response
            if response is not None:
                response.push(None)
                response.hold()
        return True

    async def _catch_up(self, sink: ChunkSink) -> None:
        """The client fell behind while chunks were pushed: wait for it in the consumer's task (a
        client that left raises here), then read and push again."""
        self._behind = False
        await sink.drained()
        response = self._response
        if response is not None:
            response.resume()
            response.push(self._pushed)

    def __aiter__(self) -> EngineChunkStream:
        return self

    async def __anext__(self) -> StreamChunk:
        ready = self._ready
        while not ready:
            if self._done:
                raise StopAsyncIteration
            if self._behind and self._sink is not None:
                await self._catch_up(self._sink)
            if self._parser.failure is not None:
                self._finish(ended=False)  # the chunks before the broken line are out: now its error
            try:
                response = self._response
                if response is None:
                    response = await self._open()
                block = response.take()
                if block is None:  # nothing yet: wait for the engine, within the idle bound
                    watch = self._watch
                    if watch is not None:
                        watch.waiting()
                    await response.arrival()
                    if watch is not None:
                        watch.received()
                    continue
            except asyncio.CancelledError:
                watch = self._watch
                if watch is None:
                    raise
                raised = watch.cancelled()  # the idle bound's, or a cancellation from elsewhere
                if isinstance(raised, asyncio.CancelledError):
                    raise
                self._done = True
                self.release()
                raise raised from None
            except Exception as exc:  # noqa: BLE001 - translated in one place
                self._done = True
                self.release()
                translate_client_error(self._backend, exc)
            if self._relayed is not None and block:  # it starts with the block the first sink took
                size, events = self._relayed
                self._relayed = None
                sent, block = block[:size], block[size:]
                self._last = (self._last[1], sent)
                ready.append(StreamChunk(framed=sent, events=events))
                if not block:
                    continue
            if not block:
                self._finish(ended=True)
            elif self._verbatim and self._between_events and (events := self._plain_events(block)):
                self._last = (self._last[1], block)
                ready.append(StreamChunk(framed=block, events=events))
            else:
                parser = self._parser
                self._take(parser.feed(block))
                self._between_events = parser.between_events
        return ready.popleft()

    async def _open(self) -> EngineResponse:
        receiver = self._first_block if self._first_sink is not None else None
        response = await self._client.request("POST", self._url, self._body, self._headers, receiver=receiver)
        if receiver is not None and self._first_sink is None:  # the first block came with the head
            response.push(None)
        self._response = response
        await raise_for_engine_status(self._backend, response, self._request.request_id, self._secrets)
        return response

    def _plain_events(self, block: bytes) -> int:
        """How many events ``block`` holds when it is nothing but whole plain chunk events, each
        ``data: {...}\n\n`` on one line naming choices, without usage or error (forwarded as it
        came); else 0 and the block is parsed event by event. The checks are byte counts: with
        exactly two newlines per event, all of them in the ``}\n\ndata: {`` seams and the end,
        every line is one ``data:`` line holding one object."""
        if block[:7] != b"data: {" or block[-3:] != b"}\n\n" or len(block) >= self._max_line_bytes:
            return 0
        events = block.count(b"\n\n")
        if events == 1:  # the usual block at a token's pace: its two newlines are the end's
            plain = block.count(b"\n") == 2 and block.count(b'"choices"') == 1
        else:
            plain = (block.count(b"\n") == 2 * events and block.count(b"}\n\ndata: {") == events - 1
                     and block.count(b'"choices"') == events)
        return events if plain and b'"usage"' not in block and b'"error"' not in block else 0

    def _take(self, payloads: list[bytes]) -> None:
        """Turn a block's payloads into chunks; consecutive plain ones become one framed chunk."""
        run: list[bytes] = []
        for data in payloads:
            if data == _DONE:
                self._done = True
                self.release(at_end=True)  # the chunked body's end may be a segment behind: kept for it
                break
            self._last = (self._last[1], data)
            if (
                self._verbatim and data[-1:] == b"}" and data[:1] == b"{" and b'"choices"' in data
                and b'"usage"' not in data and b'"error"' not in data
            ):
                run.append(data)
                continue
            if run:
                self._ready.append(_framed(run))
                run = []
            try:
                chunk = self._chunk(data)
            except InferLabError as exc:
                self._parser.failure = exc  # raised once the chunks before it are out
                return
            self._verbatim = chunk.raw is not None
            self._ready.append(chunk)
        if run:
            self._ready.append(_framed(run))

    def _finish(self, *, ended: bool) -> None:
        """The stream broke, or its body ended: complete, or raise why it is not."""
        self.release()
        if self._done:
            return
        self._done = True
        self._parser.end()  # raises the parser's failure, or a body that ended mid-line
        last, before_last = self._last[1], self._last[0]
        if ended and not (_FINISHED.search(last) or _FINISHED.search(before_last)):
            raise incomplete_stream(self._backend)

    def _chunk(self, data: bytes) -> StreamChunk:
        try:
            chunk: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed_stream(self._backend, "a stream event that is not JSON") from None
        if not isinstance(chunk, dict):
            raise malformed_stream(self._backend, "a stream event that is not a JSON object")
        if chunk.get("error") or chunk.get("object") == "error":
            raise stream_error(self._backend, chunk, request_id=self._request.request_id, secrets=self._secrets)
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise malformed_stream(self._backend, "a stream event that is not a completion chunk")
        try:
            usage = Usage.from_openai(chunk.get("usage"))
        except (AttributeError, TypeError, ValueError):
            raise malformed_stream(self._backend, "a stream event with malformed usage") from None
        has_content = bool(choices)
        model = self._request.model
        if chunk.get("model") == model and usage is None:
            return StreamChunk(usage=usage, has_content=has_content, raw=data)
        chunk["model"] = model
        return StreamChunk(data=chunk, usage=usage, has_content=has_content)

    def release(self, *, at_end: bool = False) -> None:
        """Give the connection back: closed if the body was not read to its end, unless ``at_end``
        (``[DONE]`` was read: the rest is read and dropped, and the connection kept). Idempotent."""
        response, self._response = self._response, None
        if response is not None:
            response.release(at_end=at_end)
        if self._watch is not None:
            self._watch.stop()

    async def aclose(self) -> None:
        self._done = True
        self._ready.clear()
        self.release()


def _framed(payloads: list[bytes]) -> StreamChunk:
    """Plain chunks forwarded as they came, already in SSE framing."""
    return StreamChunk(framed=b"".join([b"data: " + data + b"\n\n" for data in payloads]), events=len(payloads))
