"""OpenAPI 3.1 documents generated from the route declarations (``inferlab.api.routes``).

Each operation carries its access rule: ``x-route-group`` and ``x-required-role`` (the least role),
the same in words in its description, and ``security: []`` when no credential is needed. Request
bodies come from the pydantic models the handlers validate with, or from the hand-written schemas
of the OpenAI bodies (``inferlab.api.openai_schemas``); errors are the OpenAI error shape.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from functools import partial
from http import HTTPStatus
from typing import Any

from inferlab import __version__
from inferlab.api.routes import Body, RouteSpec, Schema
from inferlab.auth.policy import RouteRule

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"},
        "type": {"type": "string", "description": "invalid_request_error, authentication_error, permission_error, "
                                                  "not_found_error, rate_limit_error, insufficient_quota..."},
        "code": {"type": ["string", "null"]},
        "param": {"type": ["string", "null"], "description": "the request field at fault"}}}},
}
ERRORS = {
    400: "Invalid request (the error names the field)",
    401: "No credential, or a bad one",
    403: "Not allowed: route group, role, model or delegation ceiling",
    404: "Not found: no such model or object (another tenant's objects answer 404 too)",
    408: "The request body was not received in time (server.body_timeout_s)",
    413: "Request body larger than server.max_body_bytes",
    415: "Content-Encoding other than gzip or deflate",
    429: "Rate limit or quota reached, or the engine is busy (Retry-After when retrying helps)",
    502: "The engine failed before answering",
    503: "Unavailable: no replica ready, the server shutting down, or the database not answering (Retry-After)",
    504: "The engine did not answer in time",
}
CREDENTIAL_ERRORS = {401, 403, 503}  # a credential is checked against the store, which may be down
BODY_ERRORS = {400, 408, 413, 415}  # any route that reads a body (api/body.py)
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an InferLab API key (il-...) or a JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "the same key"},
}


def access_text(rule: RouteRule) -> str:
    if rule.group == "public":
        return "No credential needed."
    text = (f"Needs a credential scoped for the `{rule.group}` route group, held by at least the "
            f"`{rule.min_role}` role.")
    if rule.model_in == "body":
        text += " A model-scoped key must name one of its models in `model`."
    elif rule.model_in == "path":
        text += " A model-scoped key may only read its own models."
    return text


def openapi_document(specs: Iterable[RouteSpec], *, title: str, description: str) -> dict[str, Any]:
    """The document of these routes, in their declaration order."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for spec in specs:
        paths.setdefault(spec.canonical, {})[spec.method.lower()] = _operation(spec, schemas)
        tags += [tag for tag in spec.tags if tag not in tags]
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def operation_id(spec: RouteSpec) -> str:
    words = [word.strip("{}").replace(".", "_") for word in spec.canonical.split("/") if word]
    return "_".join([spec.method.lower(), *words])


def _operation(spec: RouteSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    rule = spec.access
    handler = spec.handler.func if isinstance(spec.handler, partial) else spec.handler  # not partial's own doc
    text = spec.description or inspect.getdoc(handler)
    operation: dict[str, Any] = {
        "operationId": operation_id(spec),
        "summary": spec.summary,
        "description": f"{text}\n\n{access_text(rule)}" if text else access_text(rule),
        "tags": list(spec.tags),
    }
    if rule.group == "public":
        operation["security"] = []
    else:
        operation["x-route-group"] = rule.group
        operation["x-required-role"] = rule.min_role
    parameters = _parameters(spec)
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _reference(spec.body, schemas)}}}
    operation["responses"] = _responses(spec, schemas)
    return operation


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    declared = {param.name: param for param in spec.params}
    parameters: list[dict[str, Any]] = []
    for name in spec.path_params:
        param = declared.get(name)
        parameters.append({"name": name, "in": "path", "required": True,
                           "schema": dict(param.schema) if param else {"type": "string"},
                           **({"description": param.description} if param and param.description else {})})
    for param in spec.params:
        if param.where == "query":
            parameters.append({"name": param.name, "in": "query", "schema": dict(param.schema),
                               **({"description": param.description} if param.description else {})})
    return parameters


def _responses(spec: RouteSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": HTTPStatus(spec.status).phrase}
    content: dict[str, Any] = {}
    if spec.response is not None:
        content["application/json"] = {"schema": _reference(spec.response, schemas)}
    if spec.streams:
        content["text/event-stream"] = {"schema": {"type": "string"}, "description": (
            "with `stream: true`: `data: <chunk JSON>` events, then `data: [DONE]`; an error after the "
            "first event arrives as one `data: {\"error\": ...}` event")}
    if content:
        success["content"] = content
    responses: dict[str, Any] = {str(spec.status): success}
    codes = set(spec.errors) | (CREDENTIAL_ERRORS if spec.access.group != "public" else set())
    if spec.body is not None:
        codes |= BODY_ERRORS
    for code in sorted(codes):
        responses[str(code)] = {"description": ERRORS.get(code, HTTPStatus(code).phrase), "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return responses


def _reference(body: Body, schemas: dict[str, Any]) -> dict[str, str]:
    """Put the body's schema (and the models it nests) in components; refer to it."""
    if isinstance(body, Schema):
        name, schema = body.name, dict(body.json)
    else:
        name = body.__name__
        schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
        for nested, definition in schema.pop("$defs", {}).items():
            _put(schemas, nested, definition)
    _put(schemas, name, schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _put(schemas: dict[str, Any], name: str, schema: Any) -> None:
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")
