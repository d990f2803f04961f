"""The in-process response store (a gateway without a database): the tenant's own, until expiry,
bounded with the oldest dropped first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inferlab.responses.store import MemoryResponseStore, StoredResponse

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def stored(response_id: str, tenant: str = "a", ttl: timedelta = timedelta(hours=1)) -> StoredResponse:
    return StoredResponse(response_id, tenant, NOW, NOW + ttl, {"id": response_id}, [], [])


async def test_the_tenants_own_until_expiry_and_bounded() -> None:
    store = MemoryResponseStore(max_entries=2)
    await store.save(stored("r1"))
    await store.save(stored("r2", ttl=timedelta(seconds=1)))
    assert await store.get("a", "r1", NOW) is not None and await store.get("b", "r1", NOW) is None
    assert await store.get("a", "r2", NOW + timedelta(seconds=2)) is None
    assert not await store.delete("b", "r1") and await store.purge(NOW + timedelta(seconds=2)) == 1
    await store.save(stored("r3"))
    await store.save(stored("r4"))
    assert await store.get("a", "r1", NOW) is None  # the oldest made room
    assert await store.delete("a", "r4") and await store.get("a", "r4", NOW) is None
