"""The Responses step: ``POST /v1/responses`` as a chat call on the chain.

It runs first among the translating steps: it loads the conversation a ``previous_response_id``
names (the caller's tenant's only, 404 otherwise), writes the chat body, lets the rest of the
chain (tiers, limits, scheduling, routing, metering) run it as any chat completion, and renders
the answer in the Responses shape — whole, or as Responses events. A stored response is saved
before its last bytes leave, so a follow-up naming it always finds it. The cache is bypassed:
a replay would repeat an earlier response's id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from inferlab.errors import NotFound, UpstreamError
from inferlab.pipeline import Call, Next, Reply
from inferlab.responses.render import Turn, new_id, response_object
from inferlab.responses.request import REQUEST_NOTE, ResponsesRequest
from inferlab.responses.store import ResponseStore, StoredResponse
from inferlab.responses.stream import ResponseEvents
from inferlab.types import InferenceResponse, Usage

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ServeResponses:
    def __init__(self, store: ResponseStore, *, retention_s: float, clock: Clock = _utcnow) -> None:
        self._store = store
        self._retention = timedelta(seconds=retention_s)
        self._clock = clock

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        request = call.notes.get(REQUEST_NOTE)
        if not isinstance(request, ResponsesRequest):
            return await call_next(call)
        history: list[dict[str, Any]] = []
        if request.previous_response_id is not None:
            previous = await self._store.get(call.caller.tenant_id, request.previous_response_id, self._clock())
            if previous is None:
                raise NotFound(f"Previous response with id '{request.previous_response_id}' not found",
                               param="previous_response_id", code="previous_response_not_found")
            history = previous.history
        call.model, call.body = request.model, request.chat_body(history)
        call.stream = call.include_usage = request.stream
        call.cache_mode = "bypass"
        response_id, created_at = new_id("resp"), int(time.time())

        async def complete(turn: Turn, usage: Usage | None) -> dict[str, Any]:
            final = response_object(response_id, request, created_at, status="completed", turn=turn, usage=usage)
            if request.store:
                await self._keep(call.caller.tenant_id, request, final, history, turn)
            return final

        reply = await call_next(call)
        if reply.chunks is not None:
            started = response_object(response_id, request, created_at, status="in_progress")
            events = ResponseEvents(reply.first, reply.chunks, started, complete)
            return Reply(first=await anext(events), chunks=events)
        body, usage = _chat_answer(reply)
        return Reply(response=InferenceResponse(await complete(Turn.of_chat(body), usage), usage))

    async def _keep(self, tenant_id: str, request: ResponsesRequest, final: dict[str, Any],
                    history: list[dict[str, Any]], turn: Turn) -> None:
        now = self._clock()
        items = [{"id": new_id("msg"), **item} for item in request.input_items]
        await self._store.save(StoredResponse(
            id=final["id"], tenant_id=tenant_id, created_at=now, expires_at=now + self._retention, response=final,
            input_items=items, history=[*history, *request.messages, turn.history()]))


def _chat_answer(reply: Reply) -> tuple[dict[str, Any], Usage | None]:
    if reply.response is not None:
        return reply.response.body, reply.response.usage
    if reply.replay is not None:
        body: dict[str, Any] = orjson.loads(reply.replay)
        return body, Usage.from_openai(body.get("usage"))
    raise UpstreamError("the engine's answer is missing")
