"""The review and docs step: ``/v1/code/review`` and ``/v1/code/docs`` as chat calls on the chain.

Like the completion step it runs first (it picks the model), writes the chat body, and shapes the
answer: a review's comments validated (one retry with the reason, then ``ReviewInvalid``), docs
as text. Streamed, the engine's chat chunks pass through as they come; a review stream then ends
with one ``code.review`` event carrying the validated comments, or an error event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from inferlab.code.docs import DocsRequest, docs_body
from inferlab.code.review import ReviewInvalid, ReviewRequest, fitted_shape, review_body, validate_review
from inferlab.code.routing import CodeTask
from inferlab.errors import PermissionDenied, UpstreamError
from inferlab.pipeline import Call, Next, Reply
from inferlab.types import InferenceResponse, StreamChunk, Usage

REVIEW_NOTE = "code.review"
DOCS_NOTE = "code.docs"
TaskChooser = Callable[[CodeTask, Call], str]  # the model; may leave its decision on the call


def _message(reply: Reply) -> tuple[str, Usage | None, str | None]:
    """The answer's text, its usage and its finish reason."""
    if reply.replay is not None:
        body: Any = orjson.loads(reply.replay)
        usage = Usage.from_openai(body.get("usage"))
    elif reply.response is not None:
        body, usage = reply.response.body, reply.response.usage
    else:
        raise UpstreamError("the engine's answer is missing")
    try:
        choice = body["choices"][0]
        return str(choice["message"]["content"] or ""), usage, choice.get("finish_reason")
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("the engine's answer is not a chat completion") from None


def _deltas(chunk: StreamChunk) -> str:
    if chunk.framed is not None:
        payloads = [line[6:] for line in chunk.framed.split(b"\n") if line.startswith(b"data: ")]
        datas = [orjson.loads(p) for p in payloads]
    else:
        datas = [chunk.data]
    text = ""
    for data in datas:
        for choice in data.get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
    return text


class ReviewStream:
    """The engine's chunks, then one event with the validated comments (or the error)."""

    def __init__(self, reply: Reply, request: ReviewRequest, model: str) -> None:
        self._first = reply.first
        self._chunks = reply.chunks
        self._request = request
        self._model = model
        self._text: list[str] = []
        self._done = False

    def __aiter__(self) -> ReviewStream:
        return self

    async def __anext__(self) -> StreamChunk:
        if self._first is not None:
            chunk, self._first = self._first, None
            self._text.append(_deltas(chunk))
            return chunk
        if self._done:
            raise StopAsyncIteration
        assert self._chunks is not None
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._done = True
            try:
                comments = validate_review("".join(self._text), self._request.diff)
            except ValueError as exc:
                raise ReviewInvalid(f"The model's review is not valid: {exc}") from None
            return StreamChunk(data={"object": "code.review", "model": self._model, "comments": comments},
                               has_content=True)
        self._text.append(_deltas(chunk))
        return chunk

    async def aclose(self) -> None:
        self._done = True
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()


class CodeAssist:
    def __init__(self, choose: TaskChooser) -> None:
        self._choose = choose

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        review, docs = call.notes.get(REVIEW_NOTE), call.notes.get(DOCS_NOTE)
        if isinstance(review, ReviewRequest):
            model = self._model(call, review.model or self._choose(CodeTask.of_review(review), call))
            return await self._review(call, call_next, review, model)
        if isinstance(docs, DocsRequest):
            model = self._model(call, docs.model or self._choose(CodeTask.of_docs(docs), call))
            call.body, call.stream = docs_body(docs, model), docs.stream
            call.include_usage = False
            reply = await call_next(call)
            if reply.streamed:
                return reply
            text, usage, _ = _message(reply)
            answer = {"object": "code.docs", "model": model, "language": docs.language, "kind": docs.kind,
                      "convention": docs.convention, "content": text, "created": int(time.time())}
            if usage is not None:
                answer["usage"] = usage.to_openai()
            return Reply(response=InferenceResponse(answer, usage))
        return await call_next(call)

    @staticmethod
    def _model(call: Call, model: str) -> str:
        if not call.caller.may_use(model):
            raise PermissionDenied(f"This key may not use the model '{model}'", code="model_not_allowed", param="model")
        call.model = model
        return model

    async def _review(self, call: Call, call_next: Next, request: ReviewRequest, model: str) -> Reply:
        call.body, call.stream = review_body(request, model), request.stream
        if request.stream:
            stream = ReviewStream(await call_next(call), request, model)
            return Reply(first=await anext(stream), chunks=stream)
        problem, cut = None, False
        for attempt in range(2):
            if attempt:  # the retry's shape fits max_tokens whatever the tokenizer
                call.body = review_body(request, model, problem, fitted_shape(request.max_tokens, request.max_comments))
            text, usage, finish = _message(await call_next(call))
            try:
                comments = validate_review(text, request.diff)
            except ValueError as exc:
                cut = finish == "length"
                problem = f"it was cut off at max_tokens; write fewer, shorter comments ({exc})" if cut else str(exc)
                continue
            answer = {"object": "code.review", "model": model, "comments": comments, "created": int(time.time())}
            if usage is not None:
                answer["usage"] = usage.to_openai()
            return Reply(response=InferenceResponse(answer, usage))
        if cut:
            raise ReviewInvalid(f"The model's review did not fit in max_tokens ({request.max_tokens}) even with shorter "
                                f"comments; raise max_tokens or lower max_comments")
        raise ReviewInvalid(f"The model's review is not valid after a retry: {problem}")
