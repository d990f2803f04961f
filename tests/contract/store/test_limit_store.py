"""The limit store on every backend."""

from __future__ import annotations

from inferlab.ratelimit.policy import Overrides
from inferlab.store import Database
from inferlab.store.limits import SqlLimitStore


async def test_put_get_replace_delete(database: Database) -> None:
    store = SqlLimitStore(database)
    await store.put("key", "k1", Overrides(rpm=10, tpm=1000, max_concurrent=2))
    await store.put("tenant", "acme", Overrides(daily_tokens=10**10, monthly_spend_usd=12.5))
    found = await store.get_many([("key", "k1"), ("user", "nobody"), ("tenant", "acme")])
    assert found == {
        ("key", "k1"): Overrides(rpm=10, tpm=1000, max_concurrent=2),
        ("tenant", "acme"): Overrides(daily_tokens=10**10, monthly_spend_usd=12.5),
    }
    await store.put("key", "k1", Overrides(rpm=5))
    assert (await store.get_many([("key", "k1")]))[("key", "k1")] == Overrides(rpm=5)
    await store.put("key", "k1", Overrides())
    await store.put("tenant", "acme", Overrides())
    assert await store.get_many([("key", "k1"), ("tenant", "acme")]) == {}
