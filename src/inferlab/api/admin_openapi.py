"""The admin API's OpenAPI 3.1 document, built from the route list and the request models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

ERROR = {"$ref": "#/components/schemas/Error"}
PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "next_after of the previous page"},
]
FILTER_PARAMS: dict[str, list[dict[str, Any]]] = {
    "/admin/audit": [{"name": name, "in": "query", "schema": {"type": "string"}, "description": text} for name, text in (
        ("tenant_id", "platform admins: only this tenant's rows"), ("action", "e.g. key.create, limits.set"),
        ("target_id", "only rows about this key, user or tenant"))],
}

# (method, path, summary, request model, success status, who)
OPERATIONS: list[tuple[str, str, str, str | None, int, str]] = [
    ("get", "/admin/users", "List users (tenant admins: their tenant)", None, 200, "tenant-admin"),
    ("post", "/admin/users", "Create a user (role at most your own)", "UserIn", 201, "tenant-admin"),
    ("get", "/admin/users/{user_id}", "Show a user", None, 200, "tenant-admin"),
    ("patch", "/admin/users/{user_id}", "Change a user's role or status (never your own)", "UserPatch", 200, "tenant-admin"),
    ("delete", "/admin/users/{user_id}", "Delete a user and their keys", None, 204, "tenant-admin"),
    ("get", "/admin/keys", "List keys (members: their own)", None, 200, "member"),
    ("post", "/admin/keys", "Create a key; the response holds the key, shown once", "KeyIn", 201, "member"),
    ("get", "/admin/keys/{key_id}", "Show a key (never its secret)", None, 200, "member"),
    ("delete", "/admin/keys/{key_id}", "Revoke a key", None, 200, "member"),
    ("post", "/admin/keys/{key_id}/revoke", "Revoke a key", None, 200, "member"),
    ("post", "/admin/keys/{key_id}/rotate", "Replace a key by a new one with the same scopes; the old is revoked",
     None, 201, "member"),
    ("get", "/admin/audit", "List admin actions, newest first (tenant admins: their tenant)", None, 200,
     "tenant-admin"),
    ("get", "/admin/tenants", "List tenants", None, 200, "platform-admin"),
    ("post", "/admin/tenants", "Create a tenant", "TenantIn", 201, "platform-admin"),
]


def openapi_document(models: dict[str, type[BaseModel]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, status, who in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "description": f"Needs the `admin` route group and at least the {who} role. "
                           "Objects outside your tenant answer 404.",
            "responses": {
                str(status): {"description": "success"},
                **{str(code): {"description": text, "content": {"application/json": {"schema": ERROR}}}
                   for code, text in ((400, "invalid request"), (401, "no or bad credential"),
                                      (403, "not allowed (role, scope or delegation ceiling)"), (404, "not found"))},
            },
        }
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in ("user_id", "key_id") if "{" + name + "}" in path]
        if method == "get" and "{" not in path:
            parameters += PAGE_PARAMS + FILTER_PARAMS.get(path, [])
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        paths.setdefault(path, {})[method] = operation
    schemas: dict[str, Any] = {name: model.model_json_schema(ref_template="#/components/schemas/{model}")
                               for name, model in models.items()}
    schemas["Error"] = {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": ["string", "null"]},
        "param": {"type": ["string", "null"]}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "InferLab admin API", "version": "0.2"},
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
    }
