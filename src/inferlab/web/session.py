"""Dashboard sessions: a signed cookie naming who signed in, and the CSRF token bound to it.

The cookie's value is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``; the
payload holds the API key's id (never the key: each request re-reads that key through the auth
service, so a revoked key or a disabled user ends its sessions within the key cache's TTL), or
for a JWT sign-in the principal the token carried; an expiry (never past the credential's own);
and a random nonce. The CSRF token is ``HMAC(secret, "csrf" nonce)``: every form and htmx request
sends it back (a hidden field or the ``X-CSRF-Token`` header), which a cross-site page cannot read.
Before sign-in the login form is protected the same way by a double-submit cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from inferlab.auth.model import ROLES, Principal, Role, Scopes

COOKIE = "inferlab_session"
LOGIN_COOKIE = "inferlab_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def session_secret(configured: bytes | None, pepper: bytes) -> bytes:
    """The configured secret, else one derived from the pepper (never the pepper itself)."""
    return configured if configured is not None else hmac.new(pepper, b"inferlab-web-session-v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """Who signed in: a key id (re-verified on every request) or a JWT's principal, until ``expires``."""

    expires: float
    nonce: str
    key_id: str | None = None
    principal: Principal | None = None  # JWT sign-ins only


def _principal_json(principal: Principal) -> dict[str, object]:
    return {"t": principal.tenant_id, "u": principal.user_id, "r": principal.role,
            "g": sorted(principal.scopes.groups),
            "m": sorted(principal.scopes.models) if principal.scopes.models is not None else None}


def _principal_of(raw: object) -> Principal | None:
    if not isinstance(raw, dict):
        return None
    role, groups, models = raw.get("r"), raw.get("g"), raw.get("m")
    if role not in ROLES or not isinstance(groups, list) or not (models is None or isinstance(models, list)):
        return None
    role_name: Role = role
    scopes = Scopes(frozenset(map(str, groups)), frozenset(map(str, models)) if models is not None else None)
    return Principal(str(raw.get("t")), str(raw.get("u")), role_name, scopes, source="jwt")


class SessionSigner:
    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()

    def issue(self, principal: Principal, now: float | None = None, *,
              not_after: float | None = None) -> tuple[str, Session]:
        """A new session for a verified principal: the cookie value and what it says. It ends at the
        TTL, the key's expiry, or ``not_after`` (a JWT's ``exp``), whichever comes first."""
        now = time.time() if now is None else now
        expires = now + self._ttl_s
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at.timestamp())
        if not_after is not None:
            expires = min(expires, not_after)
        nonce = secrets.token_urlsafe(16)
        body: dict[str, object] = {"e": expires, "n": nonce}
        if principal.key_id is not None:
            body["k"] = principal.key_id
        else:
            body["p"] = _principal_json(principal)
        payload = orjson.dumps(body)
        session = Session(expires, nonce, principal.key_id,
                          None if principal.key_id is not None else _principal_of(body["p"]))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}", session

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None when absent, forged, malformed or expired."""
        if not cookie or len(cookie) > 4096 or cookie.count(".") != 1:
            return None
        encoded, mac = cookie.split(".")
        try:
            payload, signature = _unb64(encoded), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._mac(payload)):
            return None
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        expires, nonce, key_id = body.get("e"), body.get("n"), body.get("k")
        if not isinstance(expires, (int, float)) or not isinstance(nonce, str):
            return None
        if expires <= (time.time() if now is None else now):
            return None
        if isinstance(key_id, str):
            return Session(float(expires), nonce, key_id=key_id)
        principal = _principal_of(body.get("p"))
        if principal is None:
            return None
        return Session(float(expires), nonce, principal=principal)

    def csrf_token(self, nonce: str) -> str:
        return _b64(self._mac(b"csrf:" + nonce.encode()))

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token(session.nonce).encode())


def token_expiry(token: str) -> float | None:
    """A JWT's ``exp`` (the token was verified already; this only reads the claim)."""
    import jwt

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def login_token() -> str:
    """The login form's double-submit value (a cookie and a hidden field that must agree)."""
    return secrets.token_urlsafe(24)


def expiry_text(expires: float) -> str:
    return datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
