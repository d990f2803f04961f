"""The authentication middleware: credential → ``Principal`` → route policy, before any handler.

It sits inside the gateway middleware, so its refusals are rendered as OpenAI-shaped JSON there.
``Authorization: Bearer <key>`` and ``x-api-key: <key>`` are the same credential; both at once
must agree. Unauthenticated requests answer 401 on every route but the public ones — unknown
paths included, so the route map does not leak.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson
from aiohttp import web

from inferlab.api.body import read_body
from inferlab.auth.model import Principal
from inferlab.auth.policy import RoutePolicy, authorize, authorize_model
from inferlab.auth.service import INVALID, AuthService
from inferlab.errors import AuthenticationFailed, InvalidRequest, PermissionDenied

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL = web.RequestKey("principal", Principal)
MISSING = "Missing credentials: send `Authorization: Bearer <key>` or `x-api-key: <key>`"


def credential_of(request: web.Request) -> str | None:
    """The presented credential, or None; raises ``AuthenticationFailed`` on a malformed one."""
    headers = request.headers
    authorization = headers.get("Authorization")
    api_key = headers.get("x-api-key")
    bearer: str | None = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("The Authorization header must be `Bearer <key>`")
        bearer = value.strip()
    if api_key is not None:
        api_key = api_key.strip()
        if not api_key:
            raise AuthenticationFailed(INVALID)
        if bearer is not None and bearer != api_key:
            raise AuthenticationFailed("Authorization and x-api-key carry different credentials")
    return bearer if bearer is not None else api_key


def canonical_route(request: web.Request) -> str | None:
    """The matched route's template (``/v1/models/{model_id}``), or None when nothing matched."""
    match_info = request.match_info
    if match_info.http_exception is not None:
        return None
    resource = match_info.route.resource
    return resource.canonical if resource is not None else None


async def _body_model(request: web.Request) -> str:
    raw = await read_body(request)  # kept on the request: the handler reads them again for free
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON", code="invalid_json") from None
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str):
        raise InvalidRequest("'model' is required", param="model", code="missing_field")
    return model


class SessionAuth(Protocol):
    """The dashboards' sessions (``api/web_session.py``): the principal a request's session cookie
    names (None: no valid session), and whether an unsafe request carries the session's CSRF token."""

    async def principal(self, request: web.Request) -> Principal | None: ...

    async def csrf_ok(self, request: web.Request) -> bool: ...

    def sign_in_url(self, request: web.Request) -> str: ...


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session_principal(sessions: SessionAuth | None, request: web.Request) -> Principal:
    if sessions is None:
        raise PermissionDenied("This route has no access policy", code="no_policy")
    principal = await sessions.principal(request)
    if principal is None:
        if request.method in SAFE_METHODS and "HX-Request" not in request.headers:
            raise web.HTTPSeeOther(sessions.sign_in_url(request))
        raise AuthenticationFailed("Your dashboard session has ended: sign in again", code="session_expired")
    if request.method not in SAFE_METHODS and not await sessions.csrf_ok(request):
        raise PermissionDenied("The form's CSRF token is missing or wrong: reload the page", code="csrf_failed")
    return principal


def build_auth_middleware(service: AuthService, policy: RoutePolicy, sessions: SessionAuth | None = None,
                          ) -> Callable[..., Awaitable[web.StreamResponse]]:
    """``sessions``: the dashboards' session cookies, for the routes whose rule is a session rule."""

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = canonical_route(request)
        rule = policy.rule(request.method, route) if route is not None else None
        if rule is not None and rule.group == "public":
            return await handler(request)
        if rule is not None and rule.session:  # a dashboard page: the session cookie, never a header
            principal = await _session_principal(sessions, request)
            request[PRINCIPAL] = principal
            authorize(principal, rule)
            return await handler(request)
        credential = credential_of(request)
        if credential is None:
            raise AuthenticationFailed(MISSING, code="missing_api_key")
        principal = await service.authenticate(credential)
        request[PRINCIPAL] = principal
        if route is None:
            return await handler(request)  # authenticated: no such route / method is a 404 / 405
        if rule is None:
            raise PermissionDenied("This route has no access policy", code="no_policy")
        authorize(principal, rule)
        if rule.model_in is not None and principal.scopes.models is not None:
            if rule.model_in == "body":
                authorize_model(principal, await _body_model(request))
            elif not principal.scopes.allows_model(request.match_info.get("model_id", "")):
                raise PermissionDenied("This credential may not use this model", code="model_not_allowed")
        return await handler(request)

    return auth_middleware
