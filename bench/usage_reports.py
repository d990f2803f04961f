"""Usage reports over 10 million events: a month of one tenant, from the rollups, in PostgreSQL.

Fills a throwaway PostgreSQL database (InferLab's schema, monthly partitions) with ``--events``
usage events of one tenant in one month (April 2026: 50 keys, 5 models, 8 replicas, 4 statuses)
plus ``--others`` events of 50 other tenants, generated server-side (``generate_series``), and
builds the daily and hourly rollups from them with one ``INSERT … SELECT … GROUP BY`` each — the
rows the shipper's incremental maintenance would have left (the contract tests hold it to that).
Then times, through ``SqlUsageAnalytics`` (the code ``GET /v1/usage`` and ``/admin/usage`` run):

- the tenant's month report by day, model and key (what ``/v1/usage?group_by=day,model,key`` reads);
- its month by day (the default report) and its month-end forecast (91 days of daily sums);
- every tenant's month grouped by tenant, tier and replica (``/admin/usage``);
- for comparison, the day/model/key report computed from the raw events instead of the rollups.

With ``--chdb`` the same events go to ClickHouse in process (chDB) and its report is timed too.
``--dense`` times the worst case for the rollups instead: every combination of the tenant's 50
keys, 5 models, 8 replicas and 4 statuses on each of the month's 30 days has usage (240,000 daily
rows standing for the same 10 million events), written straight into ``usage_daily``.

    python bench/usage_reports.py [--events 10000000] [--others 2000000] [--repeat 20] [--chdb] [--dense]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import text

from inferlab.metering.analytics import UsageQuery
from inferlab.metering.forecast import Forecaster
from inferlab.store import Database, upgrade
from inferlab.store.partitions import create_partition, month_of
from inferlab.store.usage_analytics import SqlUsageAnalytics, rollup_select

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
MONTH = date(2026, 4, 1)
SECONDS = 30 * 86_400

# one row per g: deterministic pseudo-random fields from g (hashes, no client round trips)
EVENTS_SQL = """
INSERT INTO usage_events (id, time, request_id, tenant, user_id, key_id, tier, route, model, model_version,
    replica, hardware, prompt_tokens, completion_tokens, cached_tokens, token_source, queue_ms, ttft_ms,
    duration_ms, status, http_status, price, hardware_cost)
SELECT 'ev' || :tag || g, TIMESTAMPTZ '2026-04-01 00:00:00+00' + make_interval(secs => (g * 7919) % :seconds),
    NULL, {tenant}, NULL, 'key' || ((g * 31) % 50), 'pro', '/v1/chat/completions', 'model-' || (g % 5), NULL,
    'replica-' || ((g * 13) % 8), 'l4', (g * 17) % 2000, (g * 23) % 500, (g * 29) % 300, 'engine', 1.5, 20.0,
    100 + (g % 900), (ARRAY['success','success','success','error','disconnect','cancelled'])[(1 + g % 6)::int], 200,
    ((g * 17) % 2000) * 0.0000002 + ((g * 23) % 500) * 0.0000006, (g % 1000) * 0.0000000123
FROM generate_series(1::bigint, CAST(:count AS bigint)) AS g
"""
ROLLUP_SQL = """
INSERT INTO {table} (tenant, bucket, tier, model, key_id, replica, status, requests, prompt_tokens,
    completion_tokens, cached_tokens, price, hardware_cost, duration_ms)
SELECT tenant, date_trunc('{grain}', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', tier, model, coalesce(key_id, ''),
    coalesce(replica, ''), status, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens),
    sum(price), sum(hardware_cost), sum(duration_ms)
FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
RAW_SQL = """
SELECT date_trunc('day', time AT TIME ZONE 'UTC') AS day, model, key_id, count(*), sum(prompt_tokens),
    sum(completion_tokens), sum(cached_tokens), sum(price), sum(hardware_cost)
FROM usage_events WHERE tenant = 'acme' AND time >= '2026-04-01' AND time < '2026-05-01' GROUP BY 1, 2, 3
"""


async def fill(database: Database, events: int, others: int) -> None:
    async with database.engine.begin() as connection:
        await create_partition(connection, month_of(date_time(MONTH)))
    for tag, count, tenant in (("a", events, "'acme'"), ("o", others, "'t' || (g % 50)")):
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(text(EVENTS_SQL.format(tenant=tenant)),
                                     {"tag": tag, "count": count, "seconds": SECONDS})
        print(f"  {count:,} events ({tag}) in {time.perf_counter() - started:.0f} s", flush=True)
    for table, grain in (("usage_daily", "day"), ("usage_hourly", "hour")):
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(text(ROLLUP_SQL.format(table=table, grain=grain)))
        print(f"  {table} built in {time.perf_counter() - started:.0f} s", flush=True)
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
        for table in ("usage_daily", "usage_hourly"):
            rows = await connection.scalar(text(f"SELECT count(*) FROM {table} WHERE tenant = 'acme'"))
            print(f"  {table}: {rows:,} rows of acme")


def date_time(day: date):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def timed(label: str, repeat: int, call) -> list[float]:  # type: ignore[no-untyped-def]
    await call()  # warm: connection, plan
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - started) * 1000)
    rows = len(result) if hasattr(result, "__len__") else "-"
    print(f"{label:58s} p50 {statistics.median(times):8.1f} ms   max {max(times):8.1f} ms   rows {rows}")
    return times


async def bench_postgres(args: argparse.Namespace) -> None:
    name = f"inferlab_bench_usage_{uuid.uuid4().hex[:8]}"
    admin = Database(f"{SERVER}/postgres")
    async with admin.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(f"{SERVER}/{name}", timeout_s=120)
    try:
        await upgrade(database)
        print(f"filling {name}: {args.events:,} events of acme in April 2026, {args.others:,} of 50 others")
        await fill(database, args.events, args.others)
        analytics = SqlUsageAnalytics(database)
        end = date(2026, 5, 1)
        month = UsageQuery(MONTH, end, ("day", "model", "key"), tenants=("acme",))
        await timed("acme's month by day, model, key (rollups)", args.repeat, lambda: analytics.usage(month))
        daily = UsageQuery(MONTH, end, ("day",), tenants=("acme",))
        await timed("acme's month by day (rollups)", args.repeat, lambda: analytics.usage(daily))
        every = UsageQuery(MONTH, end, ("tenant", "tier", "replica"))
        await timed("every tenant's month by tenant, tier, replica (rollups)", args.repeat,
                    lambda: analytics.usage(every))
        forecaster = Forecaster(analytics)
        await timed("acme's month-end forecast (91 days, fit + backtest)", args.repeat,
                    lambda: forecaster.forecast(date(2026, 4, 30), ("acme",)))

        async def raw() -> list[object]:
            async with database.engine.connect() as connection:
                return list((await connection.execute(text(RAW_SQL))).all())

        await timed("acme's month by day, model, key (raw events)", min(args.repeat, 3), raw)
    finally:
        await database.close()
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()


DENSE_SQL = """
INSERT INTO usage_daily (tenant, bucket, tier, model, key_id, replica, status, requests, prompt_tokens,
    completion_tokens, cached_tokens, price, hardware_cost, duration_ms)
SELECT 'acme', TIMESTAMPTZ '2026-04-01 00:00:00+00' + make_interval(days => d), 'pro', 'model-' || m, 'key' || k,
    'replica-' || r, (ARRAY['success','error','disconnect','cancelled'])[s], n, n * 1000, n * 250, n * 150,
    n * 0.00035, n * 0.00012, n * 500.0
FROM (SELECT CAST(:per_row AS bigint) AS n) per_row, generate_series(0, 29) d, generate_series(0, 4) m,
    generate_series(0, 49) k, generate_series(0, 7) r, generate_series(1, 4) s
"""


async def bench_dense(args: argparse.Namespace) -> None:
    name = f"inferlab_bench_dense_{uuid.uuid4().hex[:8]}"
    admin = Database(f"{SERVER}/postgres")
    async with admin.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(f"{SERVER}/{name}", timeout_s=120)
    try:
        await upgrade(database)
        rows = 30 * 5 * 50 * 8 * 4
        async with database.engine.begin() as connection:
            await connection.execute(text(DENSE_SQL), {"per_row": args.events // rows})
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE usage_daily"))
        print(f"dense: {rows:,} daily rollup rows of acme standing for {rows * (args.events // rows):,} events")
        analytics = SqlUsageAnalytics(database)
        month = UsageQuery(MONTH, date(2026, 5, 1), ("day", "model", "key"), tenants=("acme",))
        await timed("dense: acme's month by day, model, key (rollups)", args.repeat, lambda: analytics.usage(month))
        daily = UsageQuery(MONTH, date(2026, 5, 1), ("day",), tenants=("acme",))
        await timed("dense: acme's month by day (rollups)", args.repeat, lambda: analytics.usage(daily))

        async def sql_alone() -> list[object]:  # the same statement, rows left as the driver returns them
            async with database.engine.connect() as connection:
                return list((await connection.execute(rollup_select(month))).all())

        await timed("dense: the day, model, key statement alone (no Python rows)", args.repeat, sql_alone)
    finally:
        await database.close()
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()


async def bench_chdb(args: argparse.Namespace) -> None:
    from inferlab.metering.clickhouse import ChdbClickHouse, ClickHouseUsage

    client = ChdbClickHouse()
    usage = ClickHouseUsage(client, "bench")
    await usage.create()
    started = time.perf_counter()
    await client.execute(f"""
        INSERT INTO bench.usage_events SELECT 'ev' || toString(number), toDateTime64('2026-04-01 00:00:00', 6, 'UTC')
            + toIntervalSecond((number * 7919) % {SECONDS}), NULL, 'acme', NULL, 'key' || toString((number * 31) % 50),
            'pro', '/v1/chat/completions', 'model-' || toString(number % 5), NULL,
            'replica-' || toString((number * 13) % 8), 'l4', (number * 17) % 2000, (number * 23) % 500,
            (number * 29) % 300, 'engine', 1.5, 20.0, 100 + number % 900,
            ['success','success','success','error','disconnect','cancelled'][1 + number % 6], 200,
            toDecimal128(((number * 17) % 2000) * 2 + ((number * 23) % 500) * 6, 10) / 10000000,
            toDecimal128(number % 1000, 10) * toDecimal128('0.0000000123', 10)
        FROM numbers({args.events})""")
    print(f"chDB: {args.events:,} events (and both rollups by materialized view) in "
          f"{time.perf_counter() - started:.0f} s")
    month = UsageQuery(MONTH, date(2026, 5, 1), ("day", "model", "key"), tenants=("acme",))
    await timed("chDB: acme's month by day, model, key (summing tables)", args.repeat, lambda: usage.usage(month))
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--others", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--chdb", action="store_true")
    parser.add_argument("--dense", action="store_true")
    args = parser.parse_args()
    if args.dense:
        asyncio.run(bench_dense(args))
        return
    asyncio.run(bench_postgres(args))
    if args.chdb:
        asyncio.run(bench_chdb(args))


if __name__ == "__main__":
    main()
