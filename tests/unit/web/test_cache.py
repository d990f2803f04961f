"""The admin pages' platform-wide usage cache: kept ``ttl_s``, one query for concurrent viewers."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from inferlab.metering.analytics import UsageQuery, UsageRow
from inferlab.web.cache import CachedAnalytics

QUERY = UsageQuery(date(2026, 5, 1), date(2026, 5, 2), ("tenant",))


class Counting:
    """A UsageAnalytics that counts its queries and answers after a pause."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("store down")
        return [UsageRow((("tenant", f"t{self.calls}"),))]


async def test_concurrent_viewers_share_one_query_and_the_answer_is_kept_ttl() -> None:
    now = [0.0]
    inner = Counting()
    cache = CachedAnalytics(inner, ttl_s=10, clock=lambda: now[0])
    answers = await asyncio.gather(*(cache.usage(QUERY) for _ in range(5)))
    assert inner.calls == 1 and all(a == answers[0] for a in answers)
    now[0] = 9.9
    assert await cache.usage(QUERY) == answers[0] and cache.age_s(QUERY) == pytest.approx(9.9)
    now[0] = 10.0
    assert (await cache.usage(QUERY))[0].value("tenant") == "t2" and inner.calls == 2


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    inner = Counting()
    inner.fail = True
    cache = CachedAnalytics(inner, ttl_s=10)
    results = await asyncio.gather(*(cache.usage(QUERY) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and inner.calls == 1
    inner.fail = False
    assert len(await cache.usage(QUERY)) == 1 and inner.calls == 2
