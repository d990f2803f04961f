"""The dashboards under load: page render times over 10 million usage events, and the gateway's p99
overhead while dashboards refresh.

1. Fills a throwaway PostgreSQL database (InferLab's schema) with ``--events`` usage events over the
   last 30 days — 200 tenants, ``t0`` the largest (a fifth of the events), 50 keys, 5 models, 8
   replicas, 4 statuses — generated server-side, and builds the daily and hourly rollups from them
   (bench/usage_reports.py's SQL: the rows the shipper's maintenance would have left).
2. Starts the engine simulator and ``inferlab serve`` on that database (auth, metering, SLOs on),
   signs in through the login form as the platform admin and as a member of ``t0``, and times every
   page (``--repeat`` sequential loads after 3 warm-ups): p50 and p95 of the whole HTTP exchange,
   and the first load (cold: nothing cached).
3. Gateway overhead: chat completions (non-streamed, 16 tokens, ``--concurrency``) straight to the
   simulator and through the gateway, with and without ``--viewers`` dashboards refreshing (each
   reloads the overview, the usage page and the replicas panel every ``--refresh`` seconds, in a
   separate process), interleaved ``--rounds`` times; overhead = gateway p99 − direct p99.

    python bench/dashboards.py [--events 10000000] [--repeat 40] [--prompts 1500] [--viewers 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import re
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp
from overhead_targets import MODEL, Launcher, Pinning, start_simulator
from sqlalchemy import text
from usage_reports import ROLLUP_SQL

from inferlab.benchmark import BenchmarkConfig, run_benchmark
from inferlab.store import Database, upgrade
from inferlab.store.partitions import create_partition, month_of
from inferlab.testing.gateway_process import GatewayProcess

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
DAYS = 30
EVENTS_SQL = """
INSERT INTO usage_events (id, time, request_id, tenant, user_id, key_id, tier, route, model, model_version,
    replica, hardware, prompt_tokens, completion_tokens, cached_tokens, token_source, queue_ms, ttft_ms,
    duration_ms, status, http_status, price, hardware_cost)
SELECT 'ev' || g, CAST(:end AS timestamptz) - make_interval(secs => 1 + (g * 7919) % :seconds),
    NULL, CASE WHEN g % 5 = 0 THEN 't0' ELSE 't' || (g % 199 + 1) END, NULL, 'key' || ((g * 31) % 50), 'pro',
    '/v1/chat/completions', 'model-' || (g % 5), NULL, 'replica-' || ((g * 13) % 8), 'l4', (g * 17) % 2000,
    (g * 23) % 500, (g * 29) % 300, 'engine', 1.5, 20.0, 100 + (g % 900),
    (ARRAY['success','success','success','error','disconnect','cancelled'])[(1 + g % 6)::int], 200,
    ((g * 17) % 2000) * 0.0000002 + ((g * 23) % 500) * 0.0000006, (g % 1000) * 0.0000000123
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
"""
ADMIN_PAGES = ["/ui/admin/", "/ui/admin/models", "/ui/admin/pools", "/ui/admin/pools/panel", "/ui/admin/tenants",
               "/ui/admin/users", "/ui/admin/limits", "/ui/admin/usage", "/ui/admin/usage.csv",
               "/ui/admin/anomalies", "/ui/admin/audit"]
PORTAL_PAGES = ["/ui/", "/ui/usage.csv", "/ui/spend", "/ui/keys", "/ui/billing"]
REFRESHED = ["/ui/admin/", "/ui/admin/usage", "/ui/admin/pools/panel"]


async def fill(url: str, events: int) -> None:
    database = Database(url, timeout_s=600)
    await upgrade(database)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    async with database.engine.begin() as connection:
        for month in sorted({month_of(end - timedelta(days=d)) for d in range(DAYS + 1)}):
            await create_partition(connection, month)
    step = 2_000_000
    for first in range(1, events + 1, step):
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(text(EVENTS_SQL), {"end": end, "seconds": DAYS * 86_400, "first": first,
                                                        "last": min(events, first + step - 1)})
        print(f"  events {first:,}–{min(events, first + step - 1):,} in {time.perf_counter() - started:.0f} s",
              flush=True)
    for table, grain in (("usage_daily", "day"), ("usage_hourly", "hour")):
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(text(ROLLUP_SQL.format(table=table, grain=grain)))
        print(f"  {table} built in {time.perf_counter() - started:.0f} s", flush=True)
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
        for table in ("usage_events", "usage_daily", "usage_hourly"):
            print(f"  {table}: {await connection.scalar(text(f'SELECT count(*) FROM {table}')):,} rows")
    await database.close()


async def sign_in(session: aiohttp.ClientSession, base: str, key: str) -> None:
    async with session.get(base + "/ui/login") as answer:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await answer.text())
    assert token is not None
    async with session.post(base + "/ui/login", data={"credential": key, "csrf_token": token.group(1), "next": ""},
                            allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()


async def time_pages(base: str, key: str, pages: list[str], repeat: int) -> dict[str, dict[str, float]]:
    results = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await sign_in(session, base, key)
        for path in pages:
            times = []
            for n in range(repeat + 3):
                started = time.perf_counter()
                async with session.get(base + path, allow_redirects=False) as answer:
                    body = await answer.read()
                    assert answer.status == 200, (path, answer.status, body[:300])
                elapsed = (time.perf_counter() - started) * 1000
                if n == 0:
                    first = elapsed  # cold: nothing cached yet (the platform-wide figures' first query)
                if n >= 3:
                    times.append(elapsed)
            times.sort()
            row = {"first": first, "p50": statistics.median(times),
                   "p95": times[max(0, round(0.95 * len(times)) - 1)], "max": times[-1], "bytes": len(body)}
            results[path] = row
            print(f"  {path:<24} first {first:7.1f} ms   p50 {row['p50']:7.1f} ms   p95 {row['p95']:7.1f} ms"
                  f"   max {row['max']:7.1f} ms   {len(body):,} bytes", flush=True)
    return results


def _refresh(base: str, key: str, viewers: int, interval: float, stop_at: float) -> None:
    async def viewer(index: int) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            await sign_in(session, base, key)
            await asyncio.sleep(interval * index / viewers)  # spread over the interval
            while time.time() < stop_at:
                for path in REFRESHED:
                    async with session.get(base + path) as answer:
                        await answer.read()
                await asyncio.sleep(interval)

    async def all_viewers() -> None:
        await asyncio.gather(*(viewer(i) for i in range(viewers)))

    asyncio.run(all_viewers())


async def load(url: str, key: str | None, args: argparse.Namespace, label: str, seed: int) -> dict[str, Any]:
    config = BenchmarkConfig(base_url=url, model=MODEL, api_key=key, num_prompts=args.prompts,
                             concurrency=args.concurrency, stream=False, max_tokens=16, temperature=0.7,
                             prompt_words=32, timeout=60, warmup=args.concurrency * 2, label=label,
                             percentiles=(50.0, 99.0), seed=seed)
    row = (await run_benchmark(config)).to_dict()
    print(f"  {label:<28} p50 {row['p50_e2el_ms']:6.2f} ms   p99 {row['p99_e2el_ms']:6.2f} ms   "
          f"{row['completed']}/{row['num_prompts']} ok", flush=True)
    return row


def overhead(base: str, sim_url: str, keys: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {"direct": [], "quiet": [], "refreshing": []}
    for round_ in range(args.rounds):
        rows["direct"].append(asyncio.run(load(sim_url, None, args, f"direct r{round_}", round_)))
        rows["quiet"].append(asyncio.run(load(base + "/v1", keys["member"], args, f"gateway r{round_}", round_)))
        stop_at = time.time() + 600
        refresher = multiprocessing.Process(target=_refresh, args=(base, keys["admin"], args.viewers, args.refresh,
                                                                   stop_at), daemon=True)
        refresher.start()
        time.sleep(args.refresh + 1)  # every viewer signed in and refreshing
        rows["refreshing"].append(asyncio.run(load(base + "/v1", keys["member"], args,
                                                   f"gateway + dashboards r{round_}", round_)))
        refresher.terminate()
        refresher.join(10)
    p99 = {name: statistics.median(r["p99_e2el_ms"] for r in found) for name, found in rows.items()}
    quiet, busy = p99["quiet"] - p99["direct"], p99["refreshing"] - p99["direct"]
    summary = {"p99_ms": p99, "overhead_quiet_ms": quiet, "overhead_refreshing_ms": busy,
               "change": (busy - quiet) / quiet if quiet > 0 else float("nan")}
    print(f"  p99 (median of {args.rounds} rounds): direct {p99['direct']:.2f} ms, gateway {p99['quiet']:.2f} ms, "
          f"gateway while dashboards refresh {p99['refreshing']:.2f} ms")
    print(f"  gateway p99 overhead: {quiet:.2f} ms quiet, {busy:.2f} ms while {args.viewers} dashboards refresh "
          f"every {args.refresh:g} s — change {summary['change'] * 100:+.1f} %")
    return summary


def provision(gateway: GatewayProcess) -> dict[str, str]:
    import httpx2 as httpx

    root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}, timeout=30) as client:
        assert client.post("/admin/tenants", json={"id": "t0", "name": "Tenant zero"}).status_code in (200, 201)
        user = client.post("/admin/users", json={"name": "member", "tenant_id": "t0"}).json()
        member = client.post("/admin/keys", json={"name": "bench", "user_id": user["id"],
                                                  "route_groups": ["inference", "admin"]}).json()
    return {"admin": root, "member": member["key"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--prompts", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--viewers", type=int, default=5)
    parser.add_argument("--refresh", type=float, default=2.0)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; python {platform.python_version()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    name = f"inferlab_bench_web_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = Database(f"{SERVER}/postgres")
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.close()

    async def drop() -> None:
        admin = Database(f"{SERVER}/postgres")
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()

    asyncio.run(create())
    try:
        print(f"filling {name} with {args.events:,} events over {DAYS} days")
        asyncio.run(fill(f"{SERVER}/{name}", args.events))
        with ExitStack() as stack:
            logs = Path(stack.enter_context(__import__("tempfile").TemporaryDirectory(prefix="bench-web-")))
            sim = start_simulator(Launcher(stack, logs, Pinning()), 9061)
            gateway = GatewayProcess({
                "database_url": f"{SERVER}/{name}", "features": {"auth": True},
                "auth": {"pepper": "bench-web-pepper-0123456789abcdef"}, "logging": {"level": "INFO"},
                "models": [{"name": MODEL, "backend": "openai", "url": sim.base_url}],
            }).start(timeout=120)
            stack.callback(gateway.stop)
            keys = provision(gateway)
            print("pages as the platform admin (every tenant):")
            admin = asyncio.run(time_pages(gateway.url, keys["admin"], ADMIN_PAGES, args.repeat))
            print("pages as a member of t0 (2 M of the events):")
            portal = asyncio.run(time_pages(gateway.url, keys["member"], PORTAL_PAGES, args.repeat))
            worst = max((row["p95"], path) for path, row in {**admin, **portal}.items())
            print(f"worst page p95: {worst[0]:.1f} ms ({worst[1]}) — goal ≤ 200 ms")
            print("gateway overhead with and without dashboards refreshing:")
            overhead(gateway.url, sim.base_url, keys, args)
    finally:
        asyncio.run(drop())


if __name__ == "__main__":
    main()
