"""The hardware cost job on SQLite and PostgreSQL: every window costed once, each event's share
added to it and to its rollups exactly (rollup sums = raw sums), the same as the attribution over
the whole stream, whoever runs it and however often."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from inferlab.config import PricingSettings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.cost import CostTracker, HardwareRates
from inferlab.metering.costing import HardwareCostJob
from inferlab.metering.pricebook import PriceBook
from inferlab.store import Database, upgrade
from inferlab.store.costs import SqlCostLedger
from inferlab.store.usage import SqlUsageStore
from inferlab.store.usage_rollup import UsageSums
from inferlab.testing.needs import migrated_postgres_database

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
T0 = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # crosses a day and a month
GRACE_S = 120


@pytest.fixture(scope="session")
def costs_postgres_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_costs") as name:
        yield f"{PG_SERVER}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("costs_postgres_url"))


@pytest.fixture
async def database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await upgrade(database)
    if database.dialect == "postgresql":
        async with database.engine.begin() as connection:
            await connection.execute(text("TRUNCATE usage_events, usage_hourly, usage_daily, usage_cost_intervals"))
    yield database
    await database.close()


def _tracker() -> CostTracker:
    pricing = PricingSettings.model_validate({"hardware": {"usd_per_hour": {"r0": "2.50", "r1": "0.97", "m": "4"},
                                                           "interval_s": 60, "grace_s": GRACE_S}})
    return CostTracker(PriceBook(pricing), HardwareRates(pricing.hardware), interval_s=60)


def _events(count: int, seed: int) -> list[UsageEvent]:
    rng = random.Random(seed)
    return [UsageEvent(
        id=f"c-{seed}-{i}-{uuid.uuid4().hex[:6]}", time=T0 + timedelta(microseconds=rng.randrange(3 * 3600 * 10**6)),
        tenant=rng.choice(["acme", "globex"]), user=None, key=rng.choice(["k1", None]), tier="pro",
        route="/v1/chat/completions", model="m", model_version=None, replica=rng.choice(["r0", "r1", "r2", None]),
        hardware=None, prompt_tokens=rng.randrange(0, 2000), completion_tokens=rng.randrange(0, 500), cached_tokens=0,
        token_source=TokenSource.ENGINE, queue_ms=rng.random() * 20, ttft_ms=None,
        duration_ms=rng.random() * 40_000, status=rng.choice(list(EventStatus)), http_status=200)
        for i in range(count)]


def _job(database: Database) -> HardwareCostJob:
    return HardwareCostJob(_tracker(), SqlCostLedger(database), grace_s=GRACE_S, logger=logging.getLogger("test"))


async def test_every_event_gets_its_share_once_and_the_rollups_follow(database: Database) -> None:
    store = SqlUsageStore(database)
    events = _events(1500, 1)
    await store.insert_batch(events)
    now = T0 + timedelta(hours=5)
    assert await _job(database).run_once(now) >= 3
    assert await _job(database).run_once(now) == 0  # nothing left: costed once
    stored = {e.id: e for e in await store.events()}
    # no span is longer than the grace, so the windows saw every span: the attribution over the
    # whole stream (as stored: milliseconds to the microsecond), computed in one go, is what the store holds
    expected = _tracker().hardware_costs(stored.values())
    assert {i: e.hardware_cost for i, e in stored.items() if e.hardware_cost} == \
        {i: c for i, c in expected.items() if c}
    assert all(e.hardware_cost == 0 for e in stored.values() if e.replica is None)
    assert sum((e.hardware_cost for e in stored.values()), Decimal(0)) > 0
    for grain in ("hour", "day"):
        rolled = await store.rollups(grain)
        for tenant in ("acme", "globex"):
            total = UsageSums()
            for key, sums in rolled.items():
                if key.tenant == tenant:
                    total.merge(sums)
            assert total.hardware_cost == sum((e.hardware_cost for e in stored.values() if e.tenant == tenant),
                                              Decimal(0))


async def test_windows_not_yet_past_their_grace_wait(database: Database) -> None:
    await SqlUsageStore(database).insert_batch(_events(200, 2))
    # the first window starts an hour before the first event (the grace back, floored): 21:00-22:00
    assert await _job(database).run_once(T0 + timedelta(minutes=1)) == 0  # 22:01: not past its grace
    assert await _job(database).run_once(T0 + timedelta(minutes=2)) == 1  # 22:02: 21:00-22:00 is due
    assert await _job(database).run_once(T0 + timedelta(minutes=61)) == 0
    assert await _job(database).run_once(T0 + timedelta(minutes=62)) == 1  # 23:02: 22:00-23:00


async def test_two_gateways_cost_each_window_once(database: Database) -> None:
    store = SqlUsageStore(database)
    events = _events(800, 3)
    await store.insert_batch(events)
    now = T0 + timedelta(hours=5)
    before = await store.events()
    await asyncio.gather(_job(database).run_once(now), _job(database).run_once(now))
    stored = {e.id: e.hardware_cost for e in await store.events()}
    expected = _tracker().hardware_costs(before)
    assert {i: c for i, c in stored.items() if c} == {i: c for i, c in expected.items() if c}


async def test_clickhouse_rollups_get_each_windows_costs_once(tmp_path: Path) -> None:
    """With ClickHouse answering the reports, its rollups carry the same hardware cost as the
    store's — and a window sent to it twice (the store refused to record it) counts once."""
    pytest.importorskip("chdb", reason="chdb is not installed (pip install 'inferlab[analytics]')")
    from inferlab.metering.analytics import UsageQuery
    from inferlab.metering.clickhouse import ChdbClickHouse, ClickHouseUsage
    from inferlab.metering.costing import CostPart

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await upgrade(database)
    client = ChdbClickHouse()
    clickhouse = ClickHouseUsage(client, f"t_{uuid.uuid4().hex[:12]}")
    try:
        await clickhouse.create()
        store = SqlUsageStore(database)
        events = _events(600, 4)
        await store.insert_batch(events)
        await clickhouse.write(events)
        job = HardwareCostJob(_tracker(), SqlCostLedger(database), grace_s=GRACE_S, logger=logging.getLogger("test"),
                              sink=clickhouse)
        assert await job.run_once(T0 + timedelta(hours=5)) >= 3
        stored = await store.events()
        query = UsageQuery(start=T0.date() - timedelta(days=1), end=T0.date() + timedelta(days=2), group_by=("tenant",))
        by_tenant = {dict(row.group)["tenant"]: row.totals for row in await clickhouse.usage(query)}
        for tenant in ("acme", "globex"):
            assert by_tenant[tenant].hardware_cost == sum(
                (e.hardware_cost for e in stored if e.tenant == tenant), Decimal(0)) > 0
            assert by_tenant[tenant].requests == sum(1 for e in stored if e.tenant == tenant)
        first = next(e for e in stored if e.hardware_cost)
        extra = CostPart(first, 10**6)
        await clickhouse.costed(T0 - timedelta(hours=1), [extra])  # the first window, already sent: dropped
        after = {dict(row.group)["tenant"]: row.totals for row in await clickhouse.usage(query)}
        assert after[first.tenant].hardware_cost == by_tenant[first.tenant].hardware_cost
        await clickhouse.costed(T0 - timedelta(hours=7), [extra])  # a window never sent: added
        after = {dict(row.group)["tenant"]: row.totals for row in await clickhouse.usage(query)}
        assert after[first.tenant].hardware_cost > by_tenant[first.tenant].hardware_cost
        assert after[first.tenant].requests == by_tenant[first.tenant].requests  # cost rows count no request
    finally:
        await client.execute(f"DROP DATABASE IF EXISTS {clickhouse.database}")
        client.close()
        await database.close()
