"""The dashboards' sign-in: the session cookie (``inferlab.web.session``), the login and logout
forms, the vendored static files, and the security headers every ``/ui`` response carries.

The login form takes an API key or a JWT and verifies it through the auth service, exactly like an
API request; the cookie then names the key's id (HttpOnly, SameSite=Strict, ``Path=/ui``, Secure
when ``web.secure_cookie``), and every later request re-reads that key, so revoking it ends the
session. The login form itself is protected by a double-submit token (a cookie and a field).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from inferlab.api.routes import RouteSpec, add_routes
from inferlab.auth.model import Principal
from inferlab.auth.policy import PUBLIC
from inferlab.auth.service import AuthService
from inferlab.errors import InferLabError
from inferlab.web.render import STATIC, VENDORED, Renderer
from inferlab.web.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    Session,
    SessionSigner,
    login_token,
    token_expiry,
)

SESSION = web.RequestKey("web_session", Session)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
                    "Cross-Origin-Opener-Policy": "same-origin"}
STATIC_FILES = {"htmx.min.js": "text/javascript", "uPlot.iife.min.js": "text/javascript",
                "dashboards.js": "text/javascript", "uPlot.min.css": "text/css", "dashboards.css": "text/css",
                "htmx.LICENSE.txt": "text/plain", "uPlot.LICENSE.txt": "text/plain"}
ADMIN_NAV = (("", "Overview"), ("models", "Models"), ("pools", "Pools"), ("tenants", "Tenants"),
             ("users", "Users & keys"), ("limits", "Limits"), ("usage", "Usage & margin"),
             ("anomalies", "Anomalies"), ("audit", "Audit log"))
assert set(VENDORED) <= set(STATIC_FILES)


def html(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers={**SECURITY_HEADERS, **(headers or {})})


def _safe_next(raw: str | None) -> str | None:
    """Only a path of the dashboards themselves (no open redirect)."""
    if raw and raw.startswith("/ui/") and not raw.startswith("//") and "\\" not in raw and len(raw) < 2048:
        return raw
    return None


class WebSessions:
    """``inferlab.api.auth.SessionAuth`` over signed cookies."""

    def __init__(self, signer: SessionSigner, auth: AuthService, *, secure: bool, ttl_s: int) -> None:
        self.signer = signer
        self._auth = auth
        self._secure = secure
        self._ttl_s = ttl_s

    async def principal(self, request: web.Request) -> Principal | None:
        session = self.signer.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        found: Principal | None = session.principal
        if session.key_id is not None:
            try:
                found = await self._auth.principal_of_key(session.key_id)
            except InferLabError:  # revoked, expired, owner disabled, or the store down
                return None
        request[SESSION] = session
        return found

    async def csrf_ok(self, request: web.Request) -> bool:
        session = request.get(SESSION)
        if session is None:
            return False
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type == "application/x-www-form-urlencoded":
            presented = str((await request.post()).get(CSRF_FIELD, "")) or None
        return self.signer.csrf_ok(session, presented)

    def sign_in_url(self, request: web.Request) -> str:
        return "/ui/login?next=" + quote(request.path_qs, safe="")

    def csrf_of(self, request: web.Request) -> str:
        session = request.get(SESSION)
        return self.signer.csrf_token(session.nonce) if session is not None else ""

    def set_cookie(self, response: web.StreamResponse, value: str, expires: float) -> None:
        response.set_cookie(COOKIE, value, max_age=max(1, int(expires - time.time())), path="/ui", httponly=True,
                            samesite="Strict", secure=self._secure)

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/ui", httponly=True, samesite="Strict", secure=self._secure)

    def login_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(LOGIN_COOKIE, value, max_age=3600, path="/ui/login", httponly=True, samesite="Strict",
                            secure=self._secure)


class WebAccessRoutes:
    """Sign-in, sign-out and the static files: the dashboards' public routes."""

    def __init__(self, sessions: WebSessions, auth: AuthService, renderer: Renderer) -> None:
        self._sessions = sessions
        self._auth = auth
        self._renderer = renderer
        self._files = {name: (STATIC / name).read_bytes() for name in STATIC_FILES}  # read once, at build time

    def routes(self) -> list[RouteSpec]:
        tags = ("dashboards",)
        return [
            RouteSpec("GET", "/ui", self.root, PUBLIC, "The dashboards (redirects to /ui/)", tags),
            RouteSpec("GET", "/ui/login", self.login_form, PUBLIC, "The dashboards' sign-in form", tags),
            RouteSpec("POST", "/ui/login", self.login, PUBLIC, "Sign in with an API key or JWT", tags),
            RouteSpec("POST", "/ui/logout", self.logout, PUBLIC, "Sign out", tags),
            RouteSpec("GET", "/ui/static/{name}", self.static, PUBLIC, "The dashboards' scripts and styles", tags),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/ui/")

    def _login_page(self, next_path: str, error: str | None, status: int = 200) -> web.Response:
        token = login_token()
        response = html(self._renderer.render("login.html", {
            "title": "Sign in", "page": "login", "who": None, "csrf": "", "login_csrf": token, "next": next_path,
            "error": error, "admin_nav": ADMIN_NAV}), status)
        self._sessions.login_cookie(response, token)
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page(_safe_next(request.query.get("next")) or "", None)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        next_path = _safe_next(str(form.get("next", ""))) or ""
        expected = request.cookies.get(LOGIN_COOKIE, "")
        presented = str(form.get(CSRF_FIELD, ""))
        if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
            return self._login_page(next_path, "The form expired: sign in again.", 403)
        credential = str(form.get("credential", "")).strip()
        if not 8 <= len(credential) <= 8192:
            return self._login_page(next_path, "Enter an API key or a JWT.", 400)
        try:
            principal = await self._auth.authenticate(credential)
        except InferLabError as exc:
            return self._login_page(next_path, exc.message if exc.status != 401 else "That key or token is not valid.",
                                    exc.status if exc.status in (401, 403, 503) else 401)
        not_after = token_expiry(credential) if principal.source == "jwt" else None
        value, session = self._sessions.signer.issue(principal, not_after=not_after)
        landing = "/ui/admin/" if principal.role == "platform-admin" and "admin" in principal.scopes.groups else "/ui/"
        response = web.HTTPSeeOther(next_path or landing, headers=SECURITY_HEADERS)
        self._sessions.set_cookie(response, value, session.expires)
        response.del_cookie(LOGIN_COOKIE, path="/ui/login")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        session = self._sessions.signer.read(request.cookies.get(COOKIE))
        form = await request.post()
        if session is not None and not self._sessions.signer.csrf_ok(session, str(form.get(CSRF_FIELD, "")) or None):
            return html(self._renderer.render("error.html", _error_context("The form expired: reload the page.")), 403)
        response = web.HTTPSeeOther("/ui/login", headers=SECURITY_HEADERS)
        self._sessions.clear_cookie(response)
        raise response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC_FILES.get(name)
        if kind is None:
            raise web.HTTPNotFound()
        return web.Response(body=self._files[name], content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def _error_context(message: str) -> dict[str, Any]:
    return {"title": "Error", "page": "error", "who": None, "csrf": "", "error": None, "problem": message,
            "region": "report", "admin_nav": ADMIN_NAV}
