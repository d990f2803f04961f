"""The session cookie: signed, expiring, never the key; the CSRF token bound to one session."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from inferlab.auth.model import Principal, Scopes
from inferlab.web.session import SessionSigner, session_secret

KEYED = Principal("acme", "u1", "member", Scopes(frozenset({"inference"})), key_id="abcdefghijkl")
JWT = Principal("acme", "u2", "tenant-admin", Scopes(frozenset({"inference", "admin"}), frozenset({"m"})),
                source="jwt", expires_at=datetime(2030, 1, 1, tzinfo=UTC))


def signer(secret: bytes = b"s" * 32, ttl: float = 3600) -> SessionSigner:
    return SessionSigner(secret, ttl)


def test_a_key_session_names_the_key_id_only() -> None:
    value, session = signer().issue(KEYED, now=1000.0)
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==").decode()
    assert "abcdefghijkl" in payload and "acme" not in payload
    read = signer().read(value, now=1001.0)
    assert read == session and read.key_id == "abcdefghijkl" and read.principal is None


def test_a_jwt_session_carries_its_principal_and_never_outlives_the_token() -> None:
    value, _ = signer(ttl=10**10).issue(JWT, now=1000.0)
    read = signer().read(value, now=1001.0)
    assert read is not None and read.expires == JWT.expires_at.timestamp()  # type: ignore[union-attr]
    assert read.principal == Principal("acme", "u2", "tenant-admin", JWT.scopes, source="jwt")


def test_forged_tampered_expired_or_foreign_cookies_are_no_session() -> None:
    value, _ = signer().issue(KEYED, now=1000.0)
    payload, mac = value.split(".")
    forged = base64.urlsafe_b64encode(b'{"e":9e12,"n":"x","k":"otherkey0000"}').rstrip(b"=").decode()
    for cookie in (None, "", "garbage", f"{forged}.{mac}", f"{payload}.{mac[:-2]}AA", value + ".x", "a" * 5000):
        assert signer().read(cookie, now=1001.0) is None, cookie
    assert signer().read(value, now=1000.0 + 3601) is None  # expired
    assert signer(b"t" * 32).read(value, now=1001.0) is None  # another deployment's secret


def test_the_csrf_token_belongs_to_its_session() -> None:
    sign = signer()
    _, one = sign.issue(KEYED, now=1000.0)
    _, two = sign.issue(KEYED, now=1000.0)
    assert sign.csrf_ok(one, sign.csrf_token(one.nonce))
    assert not sign.csrf_ok(one, sign.csrf_token(two.nonce))
    assert not sign.csrf_ok(one, None) and not sign.csrf_ok(one, "")


def test_the_secret_is_derived_from_the_pepper_unless_configured() -> None:
    derived = session_secret(None, b"pepper")
    assert derived != b"pepper" and len(derived) == 32 and derived == session_secret(None, b"pepper")
    assert session_secret(b"mine", b"pepper") == b"mine"


def test_a_session_ends_with_the_jwt_it_came_from() -> None:
    _, session = signer(ttl=10**6).issue(Principal("a", "u", "member", Scopes(), source="jwt"), now=1000.0,
                                          not_after=1300.0)
    assert session.expires == 1300.0
