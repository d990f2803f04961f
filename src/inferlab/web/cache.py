"""A short-lived, single-flight cache of the platform-wide usage queries the admin pages run.

A tenant's report reads that tenant's rollup rows (thousands); the operator's overview and usage
pages read every tenant's (millions, on a busy platform: the daily rollup keeps key, replica and
status). Several operators' dashboards refreshing every few seconds would run the same heavy query
again and again beside the gateway's traffic, so those answers are kept ``ttl_s`` seconds and a
query already running is awaited instead of started twice. The page says how old its figures are;
the customer portal is never cached (its figures are the API's at that instant).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from inferlab.metering.analytics import UsageAnalytics, UsageQuery, UsageRow

MAX_ENTRIES = 64


class CachedAnalytics:
    def __init__(self, analytics: UsageAnalytics, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._analytics = analytics
        self._ttl_s = ttl_s
        self._clock = clock
        self._done: dict[UsageQuery, tuple[float, list[UsageRow]]] = {}
        self._running: dict[UsageQuery, asyncio.Future[list[UsageRow]]] = {}

    def age_s(self, query: UsageQuery) -> float | None:
        found = self._done.get(query)
        return None if found is None else self._clock() - found[0]

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        found = self._done.get(query)
        if found is not None and self._clock() - found[0] < self._ttl_s:
            return found[1]
        running = self._running.get(query)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[list[UsageRow]] = asyncio.get_running_loop().create_future()
        self._running[query] = future
        try:
            rows = await self._analytics.usage(query)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it
            raise
        finally:
            del self._running[query]
        future.set_result(rows)
        if len(self._done) >= MAX_ENTRIES:
            self._done.pop(next(iter(self._done)))
        self._done[query] = (self._clock(), rows)
        return rows
