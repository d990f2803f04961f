"""Route declarations → registration, the policy table and OpenAPI 3.1 documents.

``openapi-spec-validator`` is not a dependency, so ``assert_valid_openapi`` checks the structure
the documents rely on: required fields, path parameters against the templates, unique operation
ids, every ``$ref`` resolving, declared security schemes and tags.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import BaseModel

from inferlab.api.openapi import openapi_document
from inferlab.api.routes import Param, RouteSpec, Schema, access_rules, add_routes
from inferlab.auth.model import ROLE_RANK
from inferlab.auth.policy import PUBLIC, TENANT_ADMIN, RouteRule

OPERATION_FIELDS = {"tags", "summary", "description", "operationId", "parameters", "requestBody", "responses",
                    "security", "deprecated", "callbacks", "servers", "externalDocs"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolves(document: dict[str, Any], ref: str) -> bool:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return ref.startswith("#/")


def assert_valid_openapi(document: dict[str, Any]) -> None:
    orjson.dumps(document)  # plain JSON
    assert document["openapi"] == "3.1.0"
    assert isinstance(document["info"]["title"], str) and isinstance(document["info"]["version"], str)
    schemes = document["components"]["securitySchemes"]
    declared_tags = {tag["name"] for tag in document.get("tags", [])}
    for requirement in document.get("security", []):
        assert set(requirement) <= set(schemes)
    ids: set[str] = set()
    for path, operations in document["paths"].items():
        assert path.startswith("/")
        template = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in operations.items():
            assert method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
            where = f"{method} {path}"
            assert {key for key in operation if not key.startswith("x-")} <= OPERATION_FIELDS, where
            assert operation["operationId"] not in ids, where
            ids.add(operation["operationId"])
            assert set(operation.get("tags", [])) <= declared_tags, where
            parameters = operation.get("parameters", [])
            assert len({(p["name"], p["in"]) for p in parameters}) == len(parameters), where
            assert all(p["in"] in {"query", "path", "header", "cookie"} and "schema" in p for p in parameters)
            in_path = [p for p in parameters if p["in"] == "path"]
            assert {p["name"] for p in in_path} == template and all(p["required"] is True for p in in_path), where
            if "requestBody" in operation:
                assert "schema" in operation["requestBody"]["content"]["application/json"], where
            assert operation["responses"], where
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and isinstance(response["description"], str), where
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes), where
            if operation.get("security") == []:
                assert "x-required-role" not in operation, where
            else:
                assert operation["x-required-role"] in ROLE_RANK, where
    assert "$defs" not in orjson.dumps(document).decode()
    bad = [ref for ref in _refs(document) if not _resolves(document, ref)]
    assert bad == [], bad


class Inner(BaseModel):
    size: int


class Outer(BaseModel):
    name: str
    inner: Inner | None = None


async def _handler(request: web.Request) -> web.Response:
    """What the handler says about itself."""
    return web.Response()


SPECS = [
    RouteSpec("GET", "/things/{thing_id:[a-z]+}", _handler, PUBLIC, "Show a thing", ("things",),
              params=(Param("thing_id", "which", "path", {"pattern": "^[a-z]+$"}), Param("verbose", "more"))),
    RouteSpec("POST", "/things", _handler, TENANT_ADMIN, "Create a thing", ("things",), Outer, status=201,
              errors=(404,)),
    RouteSpec("PUT", "/things/{thing_id:[a-z]+}", _handler, RouteRule("inference", model_in="body"), "Replace",
              ("things",), Schema("Raw", {"type": "object"}), streams=True, description="Said here."),
]


def test_canonical_paths_are_aiohttps() -> None:
    app = web.Application()
    add_routes(app, SPECS)
    registered = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}
    assert {(spec.method, spec.canonical) for spec in SPECS} | {("HEAD", "/things/{thing_id}")} == registered
    assert SPECS[0].path_params == ["thing_id"]


def test_access_rules_refuse_a_route_declared_twice() -> None:
    assert access_rules(SPECS)[("POST", "/things")] == TENANT_ADMIN
    with pytest.raises(ValueError, match="declared twice"):
        access_rules([*SPECS, SPECS[1]])


def test_document_from_declarations() -> None:
    document = openapi_document(SPECS, title="t", description="d")
    assert_valid_openapi(document)
    show = document["paths"]["/things/{thing_id}"]["get"]
    assert show["security"] == [] and show["description"].startswith("What the handler says about itself.")
    assert [(p["name"], p["in"]) for p in show["parameters"]] == [("thing_id", "path"), ("verbose", "query")]
    assert show["parameters"][0]["schema"] == {"pattern": "^[a-z]+$"}
    create = document["paths"]["/things"]["post"]
    assert create["x-required-role"] == "tenant-admin" and "tenant-admin" in create["description"]
    assert set(create["responses"]) == {"201", "400", "401", "403", "404", "408", "413", "415", "503"}
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Outer"}
    assert {"Outer", "Inner", "Raw", "Error"} <= set(document["components"]["schemas"])
    replace = document["paths"]["/things/{thing_id}"]["put"]
    assert replace["description"].startswith("Said here.") and "one of its models" in replace["description"]
    assert set(replace["responses"]["200"]["content"]) == {"text/event-stream"}


def test_two_schemas_with_one_name_are_refused() -> None:
    clash = RouteSpec("POST", "/other", _handler, PUBLIC, "x", body=Schema("Outer", {"type": "string"}))
    with pytest.raises(ValueError, match="named Outer"):
        openapi_document([SPECS[1], clash], title="t", description="d")
