"""The identity store contract: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferlab.auth import Conflict, Scopes
from inferlab.auth.model import ApiKey, Tenant, User
from inferlab.store import SqlIdentityStore

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def user(uid: str, name: str, tenant: str = "default", role: str = "member") -> User:
    return User(uid, tenant, name, role, False, NOW)  # type: ignore[arg-type]


def key(kid: str, uid: str, tenant: str = "default", scopes: Scopes = Scopes(), expires: datetime | None = None) -> ApiKey:
    return ApiKey(kid, uid, tenant, f"key {kid}", "h" * 64, scopes, expires, False, NOW)


async def test_default_tenant_exists(store: SqlIdentityStore) -> None:
    tenant = await store.get_tenant("default")
    assert tenant is not None and tenant.name == "default"


async def test_tenants_are_unique_and_listed_in_pages(store: SqlIdentityStore) -> None:
    for name in ("acme", "beta", "corp"):
        await store.add_tenant(Tenant(name, name.title(), NOW))
    with pytest.raises(Conflict):
        await store.add_tenant(Tenant("acme", "again", NOW))
    first = await store.list_tenants(limit=2, after=None)
    assert [t.id for t in first] == ["acme", "beta"]
    rest = await store.list_tenants(limit=10, after="beta")
    assert [t.id for t in rest] == ["corp", "default"]


async def test_user_round_trip_and_unique_name_per_tenant(store: SqlIdentityStore) -> None:
    await store.add_tenant(Tenant("acme", "Acme", NOW))
    await store.add_user(user("u1", "alice"))
    await store.add_user(user("u2", "alice", tenant="acme"))  # same name, other tenant: fine
    with pytest.raises(Conflict):
        await store.add_user(user("u3", "alice"))
    found = await store.get_user("u1")
    assert found == user("u1", "alice")
    assert found is not None and found.created_at.tzinfo is not None
    assert await store.find_user("acme", "alice") == user("u2", "alice", tenant="acme")
    assert await store.find_user("acme", "nobody") is None
    assert await store.count_users() == 2


async def test_users_list_filters_by_tenant_and_pages(store: SqlIdentityStore) -> None:
    await store.add_tenant(Tenant("acme", "Acme", NOW))
    for i in range(5):
        await store.add_user(user(f"u{i}", f"n{i}", tenant="acme" if i % 2 else "default"))
    assert [u.id for u in await store.list_users(tenant_id="acme", limit=10, after=None)] == ["u1", "u3"]
    assert [u.id for u in await store.list_users(tenant_id=None, limit=2, after="u1")] == ["u2", "u3"]


async def test_update_and_delete_user_removes_keys(store: SqlIdentityStore) -> None:
    await store.add_user(user("u1", "alice"))
    await store.add_key(key("aaaaaaaaaaaa", "u1"))
    updated = await store.update_user("u1", role="tenant-admin", disabled=True)
    assert updated is not None and (updated.role, updated.disabled) == ("tenant-admin", True)
    assert await store.update_user("missing", role="member") is None
    assert await store.delete_user("u1") is True
    assert await store.get_key("aaaaaaaaaaaa") is None
    assert await store.delete_user("u1") is False


async def test_key_round_trip_keeps_scopes_and_expiry(store: SqlIdentityStore) -> None:
    await store.add_user(user("u1", "alice", role="tenant-admin"))
    scopes = Scopes(frozenset({"inference", "admin"}), frozenset({"m1", "m2"}))
    expires = NOW + timedelta(days=3)
    await store.add_key(key("aaaaaaaaaaaa", "u1", scopes=scopes, expires=expires))
    await store.add_key(key("bbbbbbbbbbbb", "u1"))
    got = await store.get_key("aaaaaaaaaaaa")
    assert got == key("aaaaaaaaaaaa", "u1", scopes=scopes, expires=expires)
    all_models = await store.get_key("bbbbbbbbbbbb")
    assert all_models is not None and all_models.scopes.models is None
    found = await store.identify("aaaaaaaaaaaa")
    assert found is not None and (found.role, found.user_disabled) == ("tenant-admin", False)
    assert await store.identify("cccccccccccc") is None


async def test_revoke_is_once_and_identify_sees_it(store: SqlIdentityStore) -> None:
    await store.add_user(user("u1", "alice"))
    await store.add_key(key("aaaaaaaaaaaa", "u1"))
    assert await store.revoke_key("aaaaaaaaaaaa", NOW) is True
    assert await store.revoke_key("aaaaaaaaaaaa", NOW) is False
    found = await store.identify("aaaaaaaaaaaa")
    assert found is not None and found.key.revoked


async def test_replace_key_is_atomic(store: SqlIdentityStore) -> None:
    await store.add_user(user("u1", "alice"))
    await store.add_key(key("aaaaaaaaaaaa", "u1"))
    assert await store.replace_key("aaaaaaaaaaaa", key("bbbbbbbbbbbb", "u1"), NOW) is True
    old, new = await store.get_key("aaaaaaaaaaaa"), await store.get_key("bbbbbbbbbbbb")
    assert old is not None and old.revoked and new is not None and not new.revoked
    # the old key is revoked now: a second rotation of it changes nothing
    assert await store.replace_key("aaaaaaaaaaaa", key("cccccccccccc", "u1"), NOW) is False
    assert await store.get_key("cccccccccccc") is None


async def test_list_keys_by_tenant_and_user_in_pages(store: SqlIdentityStore) -> None:
    await store.add_tenant(Tenant("acme", "Acme", NOW))
    await store.add_user(user("u1", "alice"))
    await store.add_user(user("u2", "bob", tenant="acme"))
    ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]
    for i, kid in enumerate(ids):
        await store.add_key(key(kid, "u1" if i < 3 else "u2", tenant="default" if i < 3 else "acme"))
    assert [k.id for k in await store.list_keys(tenant_id="default", user_id=None, limit=2, after=None)] == ids[:2]
    assert [k.id for k in await store.list_keys(tenant_id="default", user_id=None, limit=5, after=ids[1])] == [ids[2]]
    assert [k.id for k in await store.list_keys(tenant_id=None, user_id="u2", limit=5, after=None)] == [ids[3]]
    assert await store.list_keys(tenant_id="acme", user_id="u1", limit=5, after=None) == []


async def test_last_used_is_written_in_one_batch(store: SqlIdentityStore) -> None:
    await store.add_user(user("u1", "alice"))
    for kid in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
        await store.add_key(key(kid, "u1"))
    later = NOW + timedelta(minutes=5)
    await store.touch_last_used({"aaaaaaaaaaaa": NOW, "bbbbbbbbbbbb": later, "zzzzzzzzzzzz": later})
    a, b, c = [await store.get_key(k) for k in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc")]
    assert a is not None and a.last_used_at == NOW
    assert b is not None and b.last_used_at == later
    assert c is not None and c.last_used_at is None
    await store.touch_last_used({})


@pytest.mark.parametrize("hostile", ["' OR '1'='1", "x'; DROP TABLE users; --", "\u202e\u0000".replace("\u0000", ""),
                                     "名前", "a" * 64])
async def test_values_are_bound_parameters(store: SqlIdentityStore, hostile: str) -> None:
    assert await store.get_user(hostile) is None
    assert await store.find_user("default", hostile) is None
    assert await store.list_keys(tenant_id=hostile, user_id=hostile, limit=5, after=hostile) == []
    await store.add_user(user("u1", hostile[:128]))
    assert (await store.find_user("default", hostile[:128])) is not None
    assert await store.count_users() == 1
