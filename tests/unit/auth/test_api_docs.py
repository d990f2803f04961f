"""The API description of a full gateway: /openapi.json, /admin/openapi.json and /docs.

Generated from the same declarations as the route policy, so the documents list every route the
app registers, each with the rule the middleware applies.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from inferlab.api.routes import DECLARED, access_rules
from inferlab.app import create_app
from inferlab.config import Settings
from tests.unit.api.test_openapi import assert_valid_openapi

Client = TestClient[Any, Any]


async def _get(client: Client, path: str, key: str | None = None) -> tuple[int, Any]:
    response = await client.get(path, headers={"x-api-key": key} if key else None)
    return response.status, await (response.json() if response.content_type == "application/json" else response.text())


async def test_both_documents_cover_every_route_with_its_rule(client: Client) -> None:
    status, api = await _get(client, "/openapi.json")  # server.docs (default): no credential needed
    assert status == 200
    status, admin = await _get(client, "/admin/openapi.json")
    assert status == 200
    assert_valid_openapi(api)
    assert_valid_openapi(admin)
    every = access_rules(client.app[DECLARED])
    rules = {route: rule for route, rule in every.items() if not route[1].startswith("/ui")}
    assert len(rules) < len(every)  # the dashboards (/ui) are declared routes but pages, not API: undocumented
    documented = {(method.upper(), path): operation for document in (api, admin)
                  for path, operations in document["paths"].items() for method, operation in operations.items()}
    assert set(documented) == set(rules)
    assert {path for _, path in rules if path.startswith("/admin/")} == set(admin["paths"])
    assert {"/admin/limits/{subject}/{subject_id}", "/admin/backends", "/admin/audit"} <= set(admin["paths"])
    for route, rule in rules.items():
        operation = documented[route]
        if rule.group == "public":
            assert operation["security"] == [], route
        else:
            assert (operation["x-route-group"], operation["x-required-role"]) == (rule.group, rule.min_role), route
            assert f"`{rule.min_role}` role" in operation["description"], route
    assert admin["paths"]["/admin/backends"]["get"]["x-required-role"] == "platform-admin"
    assert admin["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "an InferLab API key (il-...) or a JWT"}
    assert admin["components"]["schemas"]["KeyIn"]["additionalProperties"] is False
    assert admin["components"]["schemas"]["LimitsIn"]["properties"].keys() >= {"rpm", "tpm", "monthly_spend_usd"}


async def test_inference_bodies_and_errors_are_described(client: Client) -> None:
    _, api = await _get(client, "/openapi.json")
    schemas = api["components"]["schemas"]
    chat = api["paths"]["/v1/chat/completions"]["post"]
    body = schemas[chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert body["required"] == ["model", "messages"] and body["additionalProperties"] is True
    assert {"model", "messages", "stream", "max_tokens", "temperature", "top_p", "stop"} <= set(body["properties"])
    assert body["properties"]["temperature"] == {"type": "number", "minimum": 0, "maximum": 2}
    assert {"prompt", "suffix", "stream", "max_tokens"} <= set(schemas["CompletionRequest"]["properties"])
    assert {"input", "encoding_format"} <= set(schemas["EmbeddingRequest"]["properties"])
    assert {"200", "400", "401", "403", "404", "408", "413", "415", "429", "502", "503", "504"} == set(chat["responses"])
    assert chat["responses"]["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert schemas["Error"]["properties"]["error"]["required"] == ["message", "type"]
    assert "CapacityIn" in schemas and api["paths"]["/v1/planning/capacity"]["post"]["x-required-role"] == "member"


async def test_docs_page_renders_every_operation(client: Client) -> None:
    response = await client.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert "<script" not in page and "http://" not in page and "https://" not in page  # nothing fetched
    for url in ("/openapi.json", "/admin/openapi.json"):
        document = (await _get(client, url))[1]
        for path, operations in document["paths"].items():
            assert f"<code>{escape(path)}</code>" in page, path
            for operation in operations.values():
                assert f"id='{operation['operationId']}'" in page
    assert "admin: platform-admin" in page and "<code>platform-admin</code> role" in page
    assert "<td>suffix</td>" in page and "<td>messages</td>" in page and "number 0 to 2" in page


async def test_docs_off_keeps_the_route_map_private(settings_with: Callable[..., Settings], keys_for: Any) -> None:
    app = await create_app(settings_with(server={"docs": False}))
    async with TestClient(TestServer(app)) as client:
        make = keys_for(app)
        inference, admin = await make(groups=("inference",)), await make(groups=("admin",))
        for path in ("/docs", "/openapi.json", "/admin/openapi.json"):
            assert (await client.get(path)).status == 401, path
        assert (await _get(client, "/docs", inference))[0] == 404
        assert (await _get(client, "/openapi.json", inference))[0] == 200
        assert (await _get(client, "/openapi.json", admin))[0] == 403
        assert (await _get(client, "/admin/openapi.json", inference))[0] == 403
        status, document = await _get(client, "/admin/openapi.json", admin)
        assert status == 200 and document["paths"]["/admin/openapi.json"]["get"]["x-required-role"] == "member"
