"""The admin API: users and API keys under ``/admin/...`` (OpenAPI at ``/admin/openapi.json``).

Bodies are strict (unknown fields — ``key_hash``, ``revoked``, ``id``... — are a 400, so nothing
can be mass-assigned); ids that cannot exist answer 404 before any query; lists page by id with
``limit`` and ``after``. Each route's access rule is declared with it (``routes()``); the rules
about objects (tenancy, delegation ceiling) live in ``inferlab.auth.policy`` and are applied by
``IdentityAdmin``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from inferlab.api.auth import PRINCIPAL
from inferlab.api.middleware import REQUEST_ID, read_json
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.admin import IdentityAdmin
from inferlab.auth.model import Principal, Role, Scopes
from inferlab.auth.policy import ADMIN_SELF, TENANT_ADMIN
from inferlab.auth.views import key_json, user_json
from inferlab.errors import InvalidRequest, NotFound

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]*$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:.-]{1,64}$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]
RouteGroup = Literal["inference", "admin", "billing"]

_ID = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")
MAX_PAGE = 200
DEFAULT_PAGE = 50
PAGE = (Param("limit", "page size", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}),
        Param("after", "next_after of the previous page"))
LISTED, ONE = (400,), (404,)  # errors besides 401/403 and those of a body; a foreign object is a 404


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class UserIn(_Body):
    name: Name
    role: Role = "member"
    tenant_id: TenantId | None = Field(None, description="platform admins only; default: your tenant")


class UserPatch(_Body):
    role: Role | None = None
    disabled: bool | None = None


class KeyIn(_Body):
    name: Name
    user_id: UserId | None = Field(None, description="owner; default: yourself")
    route_groups: list[RouteGroup] = Field(["inference"], min_length=1, max_length=3)  # copied per instance
    models: list[ModelName] | None = Field(None, max_length=256, description="null: every model")
    expires_in_s: int | None = Field(None, gt=0, le=10 * 365 * 86400)


Body = TypeVar("Body", bound=BaseModel)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _page(items: list[dict[str, Any]], limit: int) -> web.Response:
    more = len(items) > limit
    items = items[:limit]
    return _json({"object": "list", "data": items, "has_more": more,
                  "next_after": items[-1]["id"] if more and items else None})


def paging(request: web.Request) -> tuple[int, str | None]:
    raw_limit = request.query.get("limit", str(DEFAULT_PAGE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}", param="limit", code="invalid_value")
    after = request.query.get("after")
    if after is not None and not _ID.match(after):
        raise InvalidRequest("after must be an id from a previous page", param="after", code="invalid_value")
    return int(raw_limit), after


def query_id(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and not _ID.match(value):
        raise InvalidRequest(f"{name} is not a valid id", param=name, code="invalid_value")
    return value


def path_id(request: web.Request, name: str, what: str) -> str:
    value = request.match_info[name]
    if not _ID.match(value):
        raise NotFound(f"No such {what}")
    return value


async def parse_body(request: web.Request, model: type[Body], limit: int) -> Body:
    raw = await read_json(request, limit)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidRequest(f"Invalid body: {field or '(body)'}: {message}", param=field, code="invalid_value") from None


class AdminRoutes:
    def __init__(self, admin: IdentityAdmin, max_body_bytes: int) -> None:
        self._admin = admin
        self._limit = max_body_bytes

    def routes(self) -> list[RouteSpec]:
        users, keys = ("users",), ("keys",)
        return [
            RouteSpec("GET", "/admin/users", self.list_users, TENANT_ADMIN, "List users (tenant admins: their tenant)",
                      users, params=(*PAGE, Param("tenant_id", "platform admins: only this tenant's users")),
                      errors=LISTED),
            RouteSpec("POST", "/admin/users", self.create_user, TENANT_ADMIN, "Create a user (role at most your own)",
                      users, UserIn, status=201),
            RouteSpec("GET", "/admin/users/{user_id}", self.get_user, TENANT_ADMIN, "Show a user", users, errors=ONE),
            RouteSpec("PATCH", "/admin/users/{user_id}", self.update_user, TENANT_ADMIN,
                      "Change a user's role or status (never your own)", users, UserPatch, errors=ONE),
            RouteSpec("DELETE", "/admin/users/{user_id}", self.delete_user, TENANT_ADMIN,
                      "Delete a user and their keys", users, status=204, errors=ONE),
            RouteSpec("GET", "/admin/keys", self.list_keys, ADMIN_SELF, "List keys (members: their own)", keys,
                      params=(*PAGE, Param("user_id", "only this user's keys")), errors=LISTED),
            RouteSpec("POST", "/admin/keys", self.create_key, ADMIN_SELF,
                      "Create a key; the response holds the key, shown once", keys, KeyIn, status=201,
                      errors=ONE),
            RouteSpec("GET", "/admin/keys/{key_id}", self.get_key, ADMIN_SELF, "Show a key (never its secret)", keys,
                      errors=ONE),
            RouteSpec("DELETE", "/admin/keys/{key_id}", self.revoke_key, ADMIN_SELF, "Revoke a key", keys,
                      errors=ONE),
            RouteSpec("POST", "/admin/keys/{key_id}/revoke", self.revoke_key, ADMIN_SELF, "Revoke a key", keys,
                      errors=ONE),
            RouteSpec("POST", "/admin/keys/{key_id}/rotate", self.rotate_key, ADMIN_SELF,
                      "Replace a key by a new one with the same scopes; the old is revoked", keys, status=201,
                      errors=ONE),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    # ---- users --------------------------------------------------------------------------------
    async def list_users(self, request: web.Request) -> web.Response:
        limit, after = paging(request)
        tenant = query_id(request, "tenant_id")
        users = await self._admin.list_users(_actor(request), limit + 1, after, tenant)
        return _page([user_json(u) for u in users], limit)

    async def create_user(self, request: web.Request) -> web.Response:
        body = await parse_body(request, UserIn, self._limit)
        user = await self._admin.create_user(_actor(request), body.name, body.role, body.tenant_id,
                                             request_id=_request_id(request))
        return _json(user_json(user), 201)

    async def get_user(self, request: web.Request) -> web.Response:
        user = await self._admin.get_user(_actor(request), path_id(request, "user_id", "user"))
        return _json(user_json(user))

    async def update_user(self, request: web.Request) -> web.Response:
        user_id = path_id(request, "user_id", "user")
        body = await parse_body(request, UserPatch, self._limit)
        user = await self._admin.update_user(_actor(request), user_id, role=body.role, disabled=body.disabled,
                                             request_id=_request_id(request))
        return _json(user_json(user))

    async def delete_user(self, request: web.Request) -> web.Response:
        await self._admin.delete_user(_actor(request), path_id(request, "user_id", "user"),
                                     request_id=_request_id(request))
        return web.Response(status=204)

    # ---- keys ---------------------------------------------------------------------------------
    async def list_keys(self, request: web.Request) -> web.Response:
        limit, after = paging(request)
        user = query_id(request, "user_id")
        found = await self._admin.list_keys(_actor(request), limit + 1, after, user)
        return _page([key_json(k) for k in found], limit)

    async def create_key(self, request: web.Request) -> web.Response:
        body = await parse_body(request, KeyIn, self._limit)
        expires = datetime.now(UTC) + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
        scopes = Scopes(frozenset(body.route_groups), None if body.models is None else frozenset(body.models))
        created = await self._admin.create_key(_actor(request), name=body.name, user_id=body.user_id,
                                               scopes=scopes, expires_at=expires, request_id=_request_id(request))
        return _json({**key_json(created.key), "key": created.token}, 201)

    async def get_key(self, request: web.Request) -> web.Response:
        key = await self._admin.get_key(_actor(request), path_id(request, "key_id", "key"))
        return _json(key_json(key))

    async def revoke_key(self, request: web.Request) -> web.Response:
        key = await self._admin.revoke_key(_actor(request), path_id(request, "key_id", "key"),
                                          request_id=_request_id(request))
        return _json(key_json(key))

    async def rotate_key(self, request: web.Request) -> web.Response:
        created = await self._admin.rotate_key(_actor(request), path_id(request, "key_id", "key"),
                                              request_id=_request_id(request))
        return _json({**key_json(created.key), "key": created.token, "replaces": request.match_info["key_id"]}, 201)


def _actor(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # the auth middleware guarantees it on every /admin route


def _request_id(request: web.Request) -> str | None:
    return request.get(REQUEST_ID)
