"""Route rules, the route policy and the delegation ceiling as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferlab.auth.model import ALL_SCOPES, Principal, Scopes
from inferlab.auth.policy import (
    ADMIN_SELF,
    INFERENCE,
    MODEL_IN_BODY,
    PLATFORM_ADMIN,
    PUBLIC,
    TENANT_ADMIN,
    RoutePolicy,
    RouteRule,
    authorize,
    check_grant,
    check_user_change,
)
from inferlab.errors import NotFound, PermissionDenied

INF = Scopes(frozenset({"inference"}))
ADM = Scopes(frozenset({"inference", "admin"}))


def who(role: str, scopes: Scopes = ALL_SCOPES, tenant: str = "t1", expires: datetime | None = None) -> Principal:
    return Principal(tenant, f"{role}-user", role, scopes, key_id="k", expires_at=expires)  # type: ignore[arg-type]


def test_scopes_within() -> None:
    assert INF.within(ADM) and not ADM.within(INF)
    assert Scopes(frozenset({"inference"}), frozenset({"a"})).within(INF)
    assert not INF.within(Scopes(frozenset({"inference"}), frozenset({"a"})))  # all models > some models
    assert not Scopes(frozenset({"inference"}), frozenset({"a", "b"})).within(Scopes(frozenset({"inference"}), frozenset({"a"})))


def test_head_follows_get_and_unknown_routes_have_no_rule() -> None:
    policy = RoutePolicy({("GET", "/health"): PUBLIC})
    assert policy.rule("HEAD", "/health") == policy.rule("GET", "/health") == PUBLIC
    assert policy.rule("POST", "/health") is None and policy.rule("GET", "/nope") is None


@pytest.mark.parametrize(("role", "scopes", "rule", "allowed"), [
    ("member", INF, MODEL_IN_BODY, True),
    ("member", Scopes(frozenset()), PUBLIC, True),
    ("platform-admin", INF, ADMIN_SELF, False),  # role is not enough without the admin scope
    ("member", ADM, ADMIN_SELF, True),
    ("member", ADM, TENANT_ADMIN, False),
    ("tenant-admin", ADM, TENANT_ADMIN, True),
    ("tenant-admin", ADM, PLATFORM_ADMIN, False),
    ("platform-admin", ADM, PLATFORM_ADMIN, True),
    ("platform-admin", Scopes(frozenset({"admin"})), INFERENCE, False),
])
def test_authorize(role: str, scopes: Scopes, rule: RouteRule, allowed: bool) -> None:
    if allowed:
        authorize(who(role, scopes), rule)
    else:
        with pytest.raises(PermissionDenied):
            authorize(who(role, scopes), rule)


@pytest.mark.parametrize(("actor", "kwargs"), [
    (who("member"), {"role": "tenant-admin"}),
    (who("tenant-admin"), {"role": "platform-admin"}),
    (who("tenant-admin"), {"role": "member", "tenant_id": "t2"}),
    (who("member", INF), {"role": "member", "scopes": ADM}),
    (who("member", Scopes(frozenset({"inference"}), frozenset({"a"}))), {"role": "member", "scopes": INF}),
    (who("member", expires=datetime.now(UTC) + timedelta(days=1)), {"role": "member", "scopes": INF}),
    (who("member", expires=datetime.now(UTC) + timedelta(days=1)),
     {"role": "member", "scopes": INF, "expires_at": datetime.now(UTC) + timedelta(days=2)}),
])
def test_grants_above_the_ceiling_are_refused(actor: Principal, kwargs: dict[str, object]) -> None:
    kwargs.setdefault("tenant_id", "t1")
    with pytest.raises(PermissionDenied):
        check_grant(actor, **kwargs)  # type: ignore[arg-type]


def test_grants_within_the_ceiling_pass() -> None:
    check_grant(who("tenant-admin"), tenant_id="t1", role="tenant-admin", scopes=ADM)
    check_grant(who("platform-admin"), tenant_id="t9", role="platform-admin", scopes=ALL_SCOPES)
    soon = datetime.now(UTC) + timedelta(days=1)
    check_grant(who("member", expires=soon), tenant_id="t1", role="member", scopes=INF, expires_at=soon)


def test_user_changes() -> None:
    admin = who("tenant-admin")
    with pytest.raises(PermissionDenied):  # never your own role
        check_user_change(admin, admin.user_id, "t1", "tenant-admin", "member", None)
    with pytest.raises(PermissionDenied):
        check_user_change(admin, "x", "t1", "platform-admin", None, True)
    with pytest.raises(PermissionDenied):
        check_user_change(admin, "x", "t1", "member", "platform-admin", None)
    with pytest.raises(NotFound):
        check_user_change(admin, "x", "t2", "member", None, True)
    check_user_change(admin, "x", "t1", "member", "tenant-admin", False)
