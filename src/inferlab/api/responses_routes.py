"""The Responses API's routes: ``POST /v1/responses`` runs through the same chain as chat
completions (``OpenAIRoutes.run``; the translation is the ``ServeResponses`` step's), the rest
read or delete the caller's tenant's stored responses (another tenant's: 404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.body import read_body
from inferlab.api.middleware import MODEL, REQUEST_ID, ROUTE, read_json
from inferlab.api.openai import DEADLINE_HEADER, OpenAIRoutes, deadline_of
from inferlab.api.routes import Param, RouteSpec, Schema, add_routes
from inferlab.auth.policy import INFERENCE, MODEL_IN_BODY
from inferlab.pipeline import Call, estimate_prompt_tokens
from inferlab.pipeline.usage import UsageMeter
from inferlab.responses.request import REQUEST_NOTE, parse_responses
from inferlab.responses.service import Responses
from inferlab.types import Caller, RequestKind

ROUTE_PATH = "/v1/responses"
RESPONSES_REQUEST = Schema("ResponseCreateRequest", {
    "type": "object", "required": ["model", "input"],
    "description": "Fields outside these are refused with a 400 naming them.",
    "properties": {
        "model": {"type": "string"}, "input": {"type": ["string", "array"]}, "instructions": {"type": "string"},
        "max_output_tokens": {"type": "integer"}, "temperature": {"type": "number"}, "top_p": {"type": "number"},
        "text": {"type": "object", "description": "format: text, json_object or json_schema"},
        "tools": {"type": "array", "description": "function tools"}, "tool_choice": {},
        "parallel_tool_calls": {"type": "boolean"}, "stream": {"type": "boolean"}, "store": {"type": "boolean"},
        "previous_response_id": {"type": "string"}, "metadata": {"type": "object"}, "user": {"type": "string"},
        "truncation": {"const": "disabled"},
    },
})
RESPONSE = Schema("Response", {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "response"}, "status": {"type": "string"},
    "output": {"type": "array"}, "usage": {"type": "object"}}})
DELETED = Schema("ResponseDeleted", {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "response.deleted"}, "deleted": {"type": "boolean"}}})
INPUT_ITEMS = Schema("ResponseInputItemList", {"type": "object", "properties": {"data": {"type": "array"}}})
ID = Param("response_id", "the response's id", where="path")


class ResponsesRoutes:
    def __init__(self, inference: OpenAIRoutes, responses: Responses, caller_of: Callable[[web.Request], Caller], *,
                 max_body_bytes: int, max_tokens: int) -> None:
        self._inference = inference
        self._responses = responses
        self._caller_of = caller_of
        self._max_body_bytes = max_body_bytes
        self._max_tokens = max_tokens

    def routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", ROUTE_PATH, self.create, MODEL_IN_BODY, "Create a model response (the Responses API)",
                      ("inference",), RESPONSES_REQUEST, RESPONSE, errors=(400, 404, 429, 502, 503, 504), streams=True),
            RouteSpec("GET", ROUTE_PATH + "/{response_id}", self.get, INFERENCE, "Retrieve a stored response",
                      ("inference",), response=RESPONSE, params=(ID,), errors=(404,)),
            RouteSpec("DELETE", ROUTE_PATH + "/{response_id}", self.delete, INFERENCE, "Delete a stored response",
                      ("inference",), response=DELETED, params=(ID,), errors=(404,)),
            RouteSpec("GET", ROUTE_PATH + "/{response_id}/input_items", self.input_items, INFERENCE,
                      "The input items of a stored response", ("inference",), response=INPUT_ITEMS, params=(ID,),
                      errors=(404,)),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def create(self, request: web.Request) -> web.StreamResponse:
        parsed = parse_responses(await read_json(request, self._max_body_bytes), max_tokens_limit=self._max_tokens)
        request[ROUTE], request[MODEL] = ROUTE_PATH, parsed.model
        size = len(await read_body(request))
        call = Call(request_id=request[REQUEST_ID], kind=RequestKind.CHAT, route=ROUTE_PATH, model=parsed.model,
                    body={"model": parsed.model}, caller=self._caller_of(request), stream=parsed.stream,
                    usage=UsageMeter(estimate_prompt_tokens(size)), notes={REQUEST_NOTE: parsed},
                    deadline=deadline_of(request.headers.get(DEADLINE_HEADER)), session_key=parsed.user,
                    client_gone=lambda: request.transport is None or request.transport.is_closing())
        return await self._inference.run(request, call)

    async def get(self, request: web.Request) -> web.Response:
        stored = await self._responses.get(self._tenant(request), request.match_info["response_id"])
        return _json(stored.response)

    async def delete(self, request: web.Request) -> web.Response:
        return _json(await self._responses.delete(self._tenant(request), request.match_info["response_id"]))

    async def input_items(self, request: web.Request) -> web.Response:
        stored = await self._responses.get(self._tenant(request), request.match_info["response_id"])
        items = stored.input_items
        return _json({"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
                      "last_id": items[-1]["id"] if items else None, "has_more": False})

    def _tenant(self, request: web.Request) -> str:
        return self._caller_of(request).tenant_id


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
