"""Usage events in the SQL store (SQLite and PostgreSQL): stored once each whatever is re-shipped,
exact money, and hourly and daily rollups that always equal the sums of the raw events."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Connection

from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store import Database
from inferlab.store.models import Base
from inferlab.store.partitions import include_name
from inferlab.store.usage import SqlUsageStore
from inferlab.store.usage_rollup import UsageSums, rollup

T0 = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)  # an hour and a half before a month (and a year) ends
_ids = itertools.count()


def event(tenant: str = "acme", *, at: datetime = T0, key: str | None = "k1", replica: str | None = "r0",
          status: EventStatus = EventStatus.SUCCESS, prompt: int = 10, completion: int = 5,
          price: str = "0.0000150000", cost: str = "0.0000021234", duration_ms: float = 12.345,
          event_id: str | None = None) -> UsageEvent:
    return UsageEvent(
        id=event_id or f"e{next(_ids):08d}-{uuid.uuid4().hex[:8]}", time=at, tenant=tenant, user="u1", key=key,
        tier="pro", route="/v1/chat/completions", model="m", model_version=None, replica=replica, hardware="L4",
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=prompt // 2,
        token_source=TokenSource.ENGINE, queue_ms=1.5, ttft_ms=3.25, duration_ms=duration_ms, status=status,
        http_status=200, price=Decimal(price), hardware_cost=Decimal(cost), request_id="client-chosen",
    )


def totals(sums: dict[object, UsageSums]) -> UsageSums:
    total = UsageSums()
    for part in sums.values():
        total.merge(part)
    return total


async def test_events_round_trip_exactly(database: Database) -> None:
    store = SqlUsageStore(database)
    sent = [event(at=T0 + timedelta(minutes=i), key=None if i % 2 else "k1", replica=None if i == 2 else "r0",
                  price="12345.6789012345") for i in range(4)]
    assert await store.insert_batch(sent) == 4
    assert await store.events() == sent  # every field, money to the 10th place, times timezone-aware


async def test_a_batch_shipped_again_is_stored_once_and_counted_once(database: Database) -> None:
    store = SqlUsageStore(database)
    first = [event() for _ in range(5)]
    assert await store.insert_batch(first) == 5
    hourly, daily = await store.rollups("hour"), await store.rollups("day")
    assert await store.insert_batch(first) == 0  # the shipper died before marking it shipped: re-sent
    assert await store.insert_batch([*first[:2], first[0]]) == 0
    assert (await store.rollups("hour"), await store.rollups("day")) == (hourly, daily)
    overlapping = [*first[3:], event(), event()]
    assert await store.insert_batch(overlapping) == 2
    assert await store.count() == 7
    assert totals(await store.rollups("hour")).requests == 7


async def test_rollups_bucket_by_utc_hour_and_day_across_a_month_end(database: Database) -> None:
    store = SqlUsageStore(database)
    times = [T0, T0 + timedelta(minutes=29), T0 + timedelta(minutes=31), T0 + timedelta(hours=2)]  # 22h, 22h, 23h, 00h
    sent = [event(at=at) for at in times]
    await store.insert_batch(sent)
    hourly = await store.rollups("hour")
    assert sorted((k.bucket.hour, s.requests) for k, s in hourly.items()) == [(0, 1), (22, 2), (23, 1)]
    daily = await store.rollups("day")
    assert sorted((k.bucket.date().isoformat(), s.requests) for k, s in daily.items()) == [
        ("2026-12-31", 3), ("2027-01-01", 1)]
    assert hourly == rollup(sent, "hour") and daily == rollup(sent, "day")


async def test_money_is_exact_and_never_rounded_away(database: Database) -> None:
    store = SqlUsageStore(database)
    tiny = [event(price="0.0000000001", cost="0.0000000003") for _ in range(1000)]
    await store.insert_batch(tiny)
    total = totals(await store.rollups("day"))
    assert total.price == Decimal("0.0000001000") and total.hardware_cost == Decimal("0.0000003000")
    with pytest.raises(ValueError, match="decimal places"):
        await store.insert_batch([event(price="0.00000000001")])  # an 11th place is refused, not rounded
    assert await store.count() == 1000


async def test_rollups_equal_raw_sums_for_mixed_keys_replicas_and_statuses(database: Database) -> None:
    store = SqlUsageStore(database)
    sent = [event(tenant=f"t{i % 3}", at=T0 + timedelta(minutes=17 * i), key=None if i % 4 == 0 else f"k{i % 2}",
                  replica=None if i % 5 == 0 else f"r{i % 3}", status=list(EventStatus)[i % 4], prompt=i,
                  completion=2 * i, price=f"0.{i:010d}", cost=f"0.{3 * i:010d}", duration_ms=i * 1.001)
            for i in range(300)]
    for start in range(0, 300, 70):  # several batches, some straddling buckets
        await store.insert_batch(sent[start:start + 70])
    stored = await store.events()
    for grain in ("hour", "day"):
        assert await store.rollups(grain) == rollup(stored, grain) == rollup(sent, grain)
    for tenant in ("t0", "t1", "t2"):
        own = [e for e in sent if e.tenant == tenant]
        assert totals(await store.rollups("day", tenant)) == totals(rollup(own, "day"))


EVENT_SPECS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 200), st.integers(0, 5000), st.integers(0, 4000),
              st.integers(0, 10**6), st.booleans()),
    min_size=1, max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=EVENT_SPECS, batch=st.integers(1, 15), resend=st.integers(0, 3))
async def test_each_tenants_stored_sums_equal_its_own_events(database: Database, specs: list[tuple[str, int, int, int,
                                                                                                    int, bool]],
                                                             batch: int, resend: int) -> None:
    """Random multi-tenant streams, shipped in random batches with re-shipments: each tenant's
    stored rows and rollups are the sums of its own events, never another tenant's."""
    store = SqlUsageStore(database)
    run = uuid.uuid4().hex[:8]  # each example's tenants are its own (the tables are shared)
    sent = [event(tenant=f"{run}-{tenant}", at=T0 + timedelta(minutes=minutes), prompt=prompt, completion=completion,
                  price=f"0.{micros:010d}", key=None if keyless else "k1")
            for tenant, minutes, prompt, completion, micros, keyless in specs]
    batches = [sent[i:i + batch] for i in range(0, len(sent), batch)]
    for chunk in [*batches, *batches[:resend]]:
        await store.insert_batch(chunk)
    for tenant in {e.tenant for e in sent}:
        own = [e for e in sent if e.tenant == tenant]
        assert sorted(e.id for e in await store.events(tenant)) == sorted(e.id for e in own)
        for grain in ("hour", "day"):
            assert await store.rollups(grain, tenant) == rollup(own, grain)


@pytest.mark.postgres
@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
async def test_postgres_partitions_by_month_on_demand_and_the_schema_still_matches(database: Database) -> None:
    store = SqlUsageStore(database)
    await store.insert_batch([event(at=T0), event(at=T0 + timedelta(days=40)), event(at=datetime(2025, 3, 1, tzinfo=UTC))])
    async with database.engine.connect() as connection:
        children = (await connection.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'usage_events' ORDER BY 1"))).scalars().all()
        assert {"usage_events_p202503", "usage_events_p202612", "usage_events_p202702"} <= set(children)
        placed = (await connection.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM usage_events GROUP BY 1 ORDER BY 1"))).all()
        assert [(name, n) for name, n in placed] == [("usage_events_p202503", 1), ("usage_events_p202612", 1),
                                                   ("usage_events_p202702", 1)]

        def diff(sync: Connection) -> list[object]:
            context = MigrationContext.configure(sync, opts={"compare_type": True, "include_name": include_name})
            return list(compare_metadata(context, Base.metadata))

        assert await connection.run_sync(diff) == []


@pytest.mark.postgres
@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
async def test_two_shippers_racing_on_overlapping_batches_store_each_event_once(database: Database) -> None:
    """Two gateways' shippers (each its own store), the same events in different orders and
    batches: each is stored once, and the rollups (locked in key order) equal the raw sums."""
    stores = [SqlUsageStore(database), SqlUsageStore(database)]
    sent = [event(tenant=f"t{i % 4}", at=T0 + timedelta(minutes=i), key=f"k{i % 3}") for i in range(400)]
    jobs = [stores[0].insert_batch(sent[i:i + 50]) for i in range(0, 400, 50)]
    jobs += [stores[1].insert_batch(sent[::-1][i:i + 80]) for i in range(0, 400, 80)]
    inserted = await asyncio.gather(*jobs)
    assert sum(inserted) == 400
    assert await stores[0].count() == 400
    assert await stores[0].rollups("hour") == rollup(sent, "hour")
