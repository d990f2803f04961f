"""The audit store on every backend: rows round-trip exactly, newest first, filtered and paged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from inferlab.auth.audit import AuditEvent, event_id
from inferlab.store import Database
from inferlab.store.audit import SqlAuditStore

T0 = 1_800_000_000_000_000  # microseconds


def event(step: int, tenant: str, action: str = "key.create", target: str = "k1", **changes: object) -> AuditEvent:
    base = AuditEvent(
        id=event_id(T0 + step), created_at=datetime(2026, 12, 4, 10, 30, 0, 123000, tzinfo=UTC), actor_key_id="abc",
        actor_user_id="u_1", actor_tenant_id="default", actor_role="platform-admin", actor_source="api_key",
        action=action, target_type="key", target_id=target, tenant_id=tenant, before=None,
        after={"id": target, "models": ["a", "b"], "revoked": False, "expires_at": None}, request_id="req-1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_round_trip_order_filters_and_paging(database: Database) -> None:
    store = SqlAuditStore(database)
    first = event(1, "acme")
    second = event(2, "acme", "key.revoke", before={"revoked": False}, after={"revoked": True}, request_id=None)
    third = event(3, "other", "limits.set", "u_2", target_type="user", actor_key_id=None)
    for item in (first, second, third):
        await store.add(item)
    assert list(await store.list(tenant_id=None, limit=10)) == [third, second, first]
    assert list(await store.list(tenant_id="acme", limit=10)) == [second, first]
    assert list(await store.list(tenant_id="acme", limit=1, after=second.id)) == [first]
    assert list(await store.list(tenant_id=None, limit=10, action="limits.set")) == [third]
    assert list(await store.list(tenant_id=None, limit=10, target_id="k1")) == [second, first]
    assert (await store.list(tenant_id=None, limit=10, action="key.revoke"))[0].after == {"revoked": True}
    assert list(await store.list(tenant_id="nobody", limit=10)) == []
