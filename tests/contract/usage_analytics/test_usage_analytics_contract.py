"""``UsageAnalytics`` contract: every implementation answers every query with exactly the sums of
the raw events it was given (rollup sums = raw sums), whatever was re-shipped, and never mixes
tenants."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.analytics import Dimension, UsageQuery, UsageRow, bucket_label, sort_rows
from inferlab.store.usage_rollup import UsageSums

from .conftest import Ledger

DAY0 = date(2026, 4, 28)  # the range crosses a month's end
START = datetime.combine(DAY0, datetime.min.time(), UTC)


def _events(seed: int, count: int) -> list[UsageEvent]:
    rng = random.Random(seed)
    found = []
    for i in range(count):
        prompt = rng.randrange(0, 3000)
        found.append(UsageEvent(
            id=f"ev-{seed}-{i:06d}", time=START + timedelta(seconds=rng.randrange(5 * 86_400), microseconds=rng.randrange(10**6)),
            tenant=rng.choice(["acme", "globex", "initech"]), user=None, key=rng.choice(["k1", "k2", None]),
            tier=rng.choice(["free", "pro"]), route="/v1/chat/completions", model=rng.choice(["small", "big"]),
            model_version=None, replica=rng.choice(["r0", "r1", None]), hardware=None, prompt_tokens=prompt,
            completion_tokens=rng.randrange(0, 800), cached_tokens=rng.randrange(0, prompt + 1),
            token_source=TokenSource.ENGINE, queue_ms=1.0, ttft_ms=None, duration_ms=rng.randrange(1, 10**6) / 1000,
            status=rng.choice(list(EventStatus)), http_status=200,
            price=Decimal(rng.randrange(0, 10**9)).scaleb(-10), hardware_cost=Decimal(rng.randrange(0, 10**8)).scaleb(-10)))
    return found


VALUE = {"tenant": lambda e: e.tenant, "tier": lambda e: e.tier, "model": lambda e: e.model,
         "key": lambda e: e.key or "", "replica": lambda e: e.replica or "", "status": lambda e: e.status.value,
         "day": lambda e: bucket_label("day", e.time), "hour": lambda e: bucket_label("hour", e.time)}


def expected(events: list[UsageEvent], query: UsageQuery) -> list[UsageRow]:
    """The answer, computed from the raw events."""
    groups: dict[tuple[tuple[str, str], ...], UsageSums] = {}
    for event in events:
        if not query.start_at <= event.time < query.end_at:
            continue
        if any(VALUE[dim](event) not in allowed for dim, allowed in (
                ("tenant", query.tenants), ("model", query.models), ("key", query.keys), ("tier", query.tiers),
                ("replica", query.replicas), ("status", query.statuses)) if allowed is not None):
            continue
        group = tuple((d, VALUE[d](event)) for d in query.group_by)
        totals = groups.setdefault(group, UsageSums())
        totals.merge(UsageSums(1, event.prompt_tokens, event.completion_tokens, event.cached_tokens, event.price,
                                 event.hardware_cost))
    return sort_rows([UsageRow(group, totals) for group, totals in groups.items()])


QUERIES: list[UsageQuery] = [
    UsageQuery(DAY0, DAY0 + timedelta(days=5), ("day", "model", "key"), tenants=("acme",)),
    UsageQuery(DAY0, DAY0 + timedelta(days=5), ("tenant", "tier", "replica", "status")),
    UsageQuery(DAY0 + timedelta(days=1), DAY0 + timedelta(days=3), ("hour",), tenants=("globex",), models=("big",)),
    UsageQuery(DAY0 + timedelta(days=2), DAY0 + timedelta(days=4), ("day",), tenants=("acme", "initech"),
               keys=("",), replicas=("r1", "")),
    UsageQuery(DAY0, DAY0 + timedelta(days=5), (), tiers=("pro",)),
    UsageQuery(DAY0, DAY0 + timedelta(days=5), ("model",), statuses=("error", "disconnect")),
    UsageQuery(DAY0 + timedelta(days=30), DAY0 + timedelta(days=31), ("day",)),  # nothing there
    UsageQuery(DAY0, DAY0 + timedelta(days=5), ("tenant",), tenants=("nobody",)),
]


async def test_every_query_equals_the_sums_of_the_raw_events(ledger: Ledger) -> None:
    events = _events(1, 3000)
    for start in range(0, len(events), 500):
        await ledger.write(events[start:start + 700])  # batches overlap: 200 events shipped twice
    await ledger.write(events[:100])  # and a batch re-shipped whole
    for query in QUERIES:
        assert await ledger.analytics.usage(query) == expected(events, query), (ledger.name, query)


async def test_rollup_totals_equal_the_raw_totals_per_tenant(ledger: Ledger) -> None:
    events = _events(2, 2000)
    assert await ledger.write(events) == len(events)
    assert await ledger.write(events[::3]) == 0
    rows = await ledger.analytics.usage(UsageQuery(DAY0, DAY0 + timedelta(days=5), ("tenant",)))
    for row in rows:
        own = [e for e in events if e.tenant == row.value("tenant")]
        assert row.totals == UsageSums(len(own), sum(e.prompt_tokens for e in own),
                                         sum(e.completion_tokens for e in own), sum(e.cached_tokens for e in own),
                                         sum((e.price for e in own), Decimal(0)),
                                         sum((e.hardware_cost for e in own), Decimal(0)))
    assert sum(row.totals.requests for row in rows) == len(events)


async def test_a_tenants_query_never_includes_another_tenant(ledger: Ledger) -> None:
    mine = [e for e in _events(3, 600) if e.tenant == "acme"]
    others = [e for e in _events(4, 600) if e.tenant != "acme"]
    await ledger.write(mine + others)
    dims: tuple[Dimension, ...] = ("day", "model", "key")
    query = UsageQuery(DAY0, DAY0 + timedelta(days=5), dims, tenants=("acme",))
    assert await ledger.analytics.usage(query) == expected(mine, query)
