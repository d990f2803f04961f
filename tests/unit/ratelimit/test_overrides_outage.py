"""Stored limits while the store is unavailable: the limits last read keep applying (a key with a
tight stored limit does not fall back to the looser configured default), and nobody waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from inferlab.errors import StoreUnavailable
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.overrides import OverrideCache
from inferlab.ratelimit.policy import Overrides

WHO = Identity("key1", "user1", "tenant1")


class FlakyLimitStore:
    def __init__(self) -> None:
        self.down = False
        self.stored = {("key", "key1"): Overrides(rpm=2)}

    async def get_many(self, subjects: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Overrides]:
        if self.down:
            raise StoreUnavailable("the store does not answer", retry_after=1.0)
        return {subject: self.stored[subject] for subject in subjects if subject in self.stored}

    async def put(self, subject: str, subject_id: str, limits: Overrides) -> None:
        self.stored[(subject, subject_id)] = limits


async def test_the_last_known_limits_apply_during_an_outage() -> None:
    store = FlakyLimitStore()
    cache = OverrideCache(store, ttl_s=0.05, errors=(StoreUnavailable,))
    assert await cache.of(WHO) == {"key": Overrides(rpm=2)}
    store.down = True
    await asyncio.sleep(0.1)  # the entries are stale: the store is asked, fails
    assert await cache.of(WHO) == {"key": Overrides(rpm=2)}
    other = Identity("key2", "user2", "tenant1")
    assert await cache.of(other) == {}  # never read: the configured defaults apply
    store.down = False
    store.stored[("key", "key1")] = Overrides(rpm=5)
    assert await cache.of(WHO) == {"key": Overrides(rpm=5)}
