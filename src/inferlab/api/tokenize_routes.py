"""``POST /tokenize`` and ``POST /detokenize`` for a served model (vLLM's shapes; llama-server's
``content`` accepted too): the caller's key and tier must allow the model, the engine answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.middleware import MODEL, ROUTE, TENANT, read_json
from inferlab.api.routes import RouteSpec, Schema, add_routes
from inferlab.auth.policy import MODEL_IN_BODY
from inferlab.backends.token_service import TokenService
from inferlab.errors import InvalidRequest, PermissionDenied
from inferlab.types import Caller

MAX_TOKENS_IN = 1_000_000
TOKENIZE_REQUEST = Schema("TokenizeRequest", {"type": "object", "required": ["model"], "properties": {
    "model": {"type": "string"}, "prompt": {"type": "string"},
    "content": {"type": "string", "description": "llama-server's name for prompt"},
    "add_special_tokens": {"type": "boolean", "default": True}}})
TOKENIZED = Schema("Tokenized", {"type": "object", "properties": {
    "tokens": {"type": "array", "items": {"type": "integer"}}, "count": {"type": "integer"}}})
DETOKENIZE_REQUEST = Schema("DetokenizeRequest", {"type": "object", "required": ["model", "tokens"], "properties": {
    "model": {"type": "string"}, "tokens": {"type": "array", "items": {"type": "integer"}}}})
DETOKENIZED = Schema("Detokenized", {"type": "object", "properties": {"prompt": {"type": "string"}}})


class TokenizeRoutes:
    def __init__(self, tokens: TokenService, caller_of: Callable[[web.Request], Caller], *,
                 max_body_bytes: int) -> None:
        self._tokens = tokens
        self._caller_of = caller_of
        self._max_body_bytes = max_body_bytes

    def routes(self) -> list[RouteSpec]:
        errors = (400, 404, 502, 503)
        return [
            RouteSpec("POST", "/tokenize", self.tokenize, MODEL_IN_BODY, "Tokenize text with a served model's tokenizer",
                      ("inference",), TOKENIZE_REQUEST, TOKENIZED, errors=errors),
            RouteSpec("POST", "/detokenize", self.detokenize, MODEL_IN_BODY, "Turn token ids back into text",
                      ("inference",), DETOKENIZE_REQUEST, DETOKENIZED, errors=errors),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def _body(self, request: web.Request, route: str) -> dict[str, Any]:
        body = await read_json(request, self._max_body_bytes)
        if not isinstance(body, dict):
            raise InvalidRequest("Expected a JSON object", code="invalid_body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
        request[ROUTE], request[MODEL] = route, model
        caller, tenant = self._caller_of(request), request.get(TENANT)
        if not caller.may_use(model):
            raise PermissionDenied(f"This key may not use the model '{model}'", code="model_not_allowed", param="model")
        if tenant is not None and not tenant.tier.allows_model(model):
            raise PermissionDenied(f"The {tenant.tier.name} tier does not include the model '{model}'",
                                   code="model_not_in_tier", param="model")
        return body

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await self._body(request, "/tokenize")
        text = body.get("prompt", body.get("content"))
        if not isinstance(text, str):
            raise InvalidRequest("'prompt' (a string) is required", param="prompt", code="invalid_value")
        special = body.get("add_special_tokens", True)
        if not isinstance(special, bool):
            raise InvalidRequest("'add_special_tokens' must be a boolean", param="add_special_tokens",
                                 code="invalid_value")
        tokens = await self._tokens.tokenize(body["model"], text, add_special=special)
        return _json({"tokens": tokens, "count": len(tokens)})

    async def detokenize(self, request: web.Request) -> web.Response:
        body = await self._body(request, "/detokenize")
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or len(tokens) > MAX_TOKENS_IN or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens):
            raise InvalidRequest("'tokens' must be an array of non-negative integers", param="tokens",
                                 code="invalid_value")
        return _json({"prompt": await self._tokens.detokenize(body["model"], tokens)})


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
