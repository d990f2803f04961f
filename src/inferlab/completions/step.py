"""The legacy completions step: ``echo`` and integer ``logprobs`` on ``/v1/completions`` (also in
batches), whatever shape the engine answers in (``completions/legacy.py``).

``echo`` is done here: the engine gets the request without it, and the prompt goes in front of
each choice's text. It needs the prompt as one string, and cannot be combined with ``logprobs``
(that would need the prompt's log probabilities, which llama-server does not give): both are a
400 naming ``echo``. The step sits just before routing, inside the cache, so a cached answer is
stored converted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from inferlab.completions.legacy import rewrite_choices
from inferlab.errors import InvalidRequest
from inferlab.pipeline import Call, Next, Reply
from inferlab.types import InferenceResponse, RequestKind, StreamChunk


def _convert(chunk: StreamChunk, prompt: str | None, offsets: dict[int, int]) -> StreamChunk:
    if chunk.framed is not None:
        events = []
        for line in chunk.framed.split(b"\n"):
            if line.startswith(b"data: {"):
                data = orjson.loads(line[6:])
                rewrite_choices(data, prompt, offsets)
                events.append(b"data: " + orjson.dumps(data) + b"\n\n")
        return StreamChunk(framed=b"".join(events), events=chunk.events, usage=chunk.usage,
                           has_content=chunk.has_content)
    data = chunk.data
    rewrite_choices(data, prompt, offsets)
    return StreamChunk(data, usage=chunk.usage, has_content=chunk.has_content)


async def _converted(first: StreamChunk | None, chunks: AsyncIterator[StreamChunk], prompt: str | None
                     ) -> AsyncIterator[StreamChunk]:
    offsets: dict[int, int] = {}
    try:
        if first is not None:
            yield _convert(first, prompt, offsets)
        async for chunk in chunks:
            yield _convert(chunk, prompt, offsets)
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


class LegacyCompletions:
    async def __call__(self, call: Call, call_next: Next) -> Reply:
        body = call.body
        if call.kind is not RequestKind.COMPLETION or ("echo" not in body and body.get("logprobs") is None):
            return await call_next(call)
        prompt = None
        if body.get("echo"):
            if body.get("logprobs") is not None:
                raise InvalidRequest("'echo' with 'logprobs' needs the prompt's log probabilities, which this "
                                     "engine does not give", param="echo", code="unsupported_parameter")
            if not isinstance(body.get("prompt"), str) or (body.get("n") or 1) != 1:
                raise InvalidRequest("'echo' needs the prompt as one string and one choice", param="echo",
                                     code="unsupported_parameter")
            prompt = body["prompt"]
        call.body = {key: value for key, value in body.items() if key != "echo"}
        reply = await call_next(call)
        if reply.chunks is not None:
            stream = _converted(reply.first, reply.chunks, prompt)
            return Reply(first=await anext(stream), chunks=stream)
        if reply.response is not None:
            answer: dict[str, Any] = reply.response.body
            rewrite_choices(answer, prompt, {})
            return Reply(response=InferenceResponse(answer, reply.response.usage))
        return reply
