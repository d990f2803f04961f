"""Billing a month: 1,000 tenants, 10 million usage events, rated from the hourly rollups through
the real store and engine, and checked line for line against rating the raw events.

1. Generates ``--events`` usage events (numpy, seeded) for ``--tenants`` tenants over March 2026
   and a few hours either side: 3 models, two tiers, tenants in UTC, Europe/Berlin and Asia/Kolkata
   (whose period boundaries fall on the half hour), on three plans (pay as you go; a flat fee with
   included tokens and a minimum; graduated bands), and a price change on 2026-03-16 (one model).
2. Rates every tenant's March period **from the raw events** (numpy sums per segment, then
   ``rating.rate``) — the reference.
3. Builds the hourly rollups (what the store's incremental maintenance leaves) and loads them into
   a fresh SQLite store and a throwaway PostgreSQL database (InferLab's schema), with the raw events
   of the hours a period boundary cuts (the Kolkata tenants'), which the store reads for partial hours.
4. Times rating every tenant's period **from the rollups** with ``BillingEngine.rate`` over
   ``SqlBillingUsage`` — the code the billing job runs — and checks every line equals step 2's.

    python bench/billing.py [--tenants 1000] [--events 10000000] [--seed 7] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import text

from inferlab.billing.engine import BillingEngine
from inferlab.billing.periods import Period, period_of
from inferlab.billing.plans import PlanBook
from inferlab.billing.protocol import Account
from inferlab.billing.rating import Line, Tokens, rate, segments
from inferlab.config.billing import BillingSettings
from inferlab.config.pricing import PricingSettings
from inferlab.metering.pricebook import PriceBook
from inferlab.store import Database, upgrade
from inferlab.store.billing import SqlBillingStore
from inferlab.store.billing_usage import SqlBillingUsage
from inferlab.store.partitions import create_partition

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"

MODELS = ("small", "medium", "large")
TIERS = ("free", "pro")
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata")
PLANS = ("payg", "pro", "grad")
MONTH = datetime(2026, 3, 15, tzinfo=UTC)
START = datetime(2026, 2, 28, 12, tzinfo=UTC)  # covers every zone's March and some hours either side
SPAN_S = int((datetime(2026, 4, 1, 12, tzinfo=UTC) - START).total_seconds())
BOOK = PriceBook(PricingSettings.model_validate({
    "models": {"small": {"input_per_million": "0.1", "output_per_million": "0.4", "cached_per_million": "0.025"},
               "medium": {"input_per_million": "0.6", "output_per_million": "2.4"},
               "large": {"input_per_million": "3", "output_per_million": "15"}},
    "tiers": {"pro": {"large": {"input_per_million": "2.5", "output_per_million": "12"}}},
    "versions": [{"effective": "2026-03-16T00:00:00Z",
                  "models": {"medium": {"input_per_million": "0.5", "output_per_million": "2"}}}]}))
SETTINGS = BillingSettings.model_validate({"adjustment_lookback": 0, "plans": {
    "payg": [{}],
    "pro": [{"flat_fee": "49", "included_tokens": 2_000_000, "minimum": "60"}],
    "grad": [{"tiers": {"mode": "graduated", "bands": [{"up_to": 1_000_000, "per_million": "0"},
                                                         {"up_to": 20_000_000, "per_million": "1.2"},
                                                         {"per_million": "0.8"}]}}]}})


def generate(tenants: int, events: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, tenants) + 0.05  # a few big tenants, many small
    tenant = rng.choice(tenants, size=events, p=weights / weights.sum()).astype(np.int32)
    seconds = rng.integers(0, SPAN_S, size=events, dtype=np.int64)
    micros = rng.integers(0, 1_000_000, size=events, dtype=np.int64)
    model = rng.integers(0, len(MODELS), size=events, dtype=np.int8)
    prompt = rng.integers(1, 4000, size=events, dtype=np.int64)
    completion = rng.integers(0, 1000, size=events, dtype=np.int64)
    cached = (prompt * rng.integers(0, 2, size=events)) // 2
    order = np.lexsort((micros, seconds, tenant))
    return {"tenant": tenant[order], "seconds": seconds[order], "micros": micros[order], "model": model[order],
            "prompt": prompt[order], "completion": completion[order], "cached": cached[order]}


def account_of(index: int) -> Account:
    return Account(f"t{index:04d}", PLANS[index % 3], ZONES[(index // 3) % 3])


def tier_of(index: int) -> str:
    return TIERS[index % 2]


def _instant_us(moment: datetime) -> int:
    return int((moment - START) / timedelta(microseconds=1))


def rate_raw(ev: dict[str, np.ndarray], tenants: int) -> dict[str, list[Line]]:
    """Every tenant's March, rated from the raw events."""
    bounds = np.searchsorted(ev["tenant"], np.arange(tenants + 1))
    at_us = ev["seconds"] * 1_000_000 + ev["micros"]
    plans = PlanBook(SETTINGS.plans)
    found: dict[str, list[Line]] = {}
    for index in range(tenants):
        account = account_of(index)
        period = period_of(MONTH, ZoneInfo(account.timezone))
        lo, hi = bounds[index], bounds[index + 1]
        times = at_us[lo:hi]
        segs = segments(period, account.plan, plans, BOOK)
        usage = []
        for seg in segs:
            a, b = np.searchsorted(times, [_instant_us(seg.start), _instant_us(seg.end)])
            model = ev["model"][lo + a:lo + b]
            sums: dict[tuple[str, str], Tokens] = {}
            for m, name in enumerate(MODELS):
                mask = model == m
                if mask.any():
                    sums[(name, tier_of(index))] = Tokens(int(ev["prompt"][lo + a:lo + b][mask].sum()),
                                                          int(ev["completion"][lo + a:lo + b][mask].sum()),
                                                          int(ev["cached"][lo + a:lo + b][mask].sum()))
            usage.append(sums)
        found[account.tenant] = rate(period, segs, usage, BOOK)
    return found


def rollups(ev: dict[str, np.ndarray], tenants: int) -> tuple[np.ndarray, ...]:
    """(tenant, hour, model) → sums of prompt, completion, cached tokens and requests."""
    hours = SPAN_S // 3600 + 1
    key = (ev["tenant"].astype(np.int64) * hours + ev["seconds"] // 3600) * len(MODELS) + ev["model"]
    size = tenants * hours * len(MODELS)
    sums = [np.bincount(key, weights=ev[f], minlength=size).astype(np.int64) for f in ("prompt", "completion", "cached")]
    count = np.bincount(key, minlength=size)
    present = np.nonzero(count)[0]
    return present, hours, count[present], *(s[present] for s in sums)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


HOURLY = ("tenant", "bucket", "tier", "model", "key_id", "replica", "status", "requests", "prompt_tokens",
          "completion_tokens", "cached_tokens", "price", "hardware_cost", "duration_ms")
EVENTS = ("id", "time", "tenant", "tier", "route", "model", "prompt_tokens", "completion_tokens", "cached_tokens",
          "token_source", "duration_ms", "status", "http_status", "price", "hardware_cost")


def ledger_rows(ev: dict[str, np.ndarray], tenants: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The hourly rollup rows, and the raw events of the hours a period boundary cuts (half-hour
    zones), which the store reads there; times as aware datetimes, money 0 (billing reads tokens)."""
    present, hours, count, prompt, completion, cached = rollups(ev, tenants)
    model = present % len(MODELS)
    hour = (present // len(MODELS)) % hours
    tenant = present // len(MODELS) // hours
    zero = Decimal(0)
    hourly = [(f"t{t:04d}", START + timedelta(hours=int(h)), tier_of(int(t)), MODELS[m], "", "", "success", int(n),
               int(p), int(c), int(k), zero, zero, zero)
              for t, h, m, n, p, c, k in zip(tenant, hour, model, count, prompt, completion, cached, strict=True)]
    bounds = np.searchsorted(ev["tenant"], np.arange(tenants + 1))
    raw: list[tuple[Any, ...]] = []
    for index in range(tenants):
        period = period_of(MONTH, ZoneInfo(account_of(index).timezone))
        for edge in (period.start, period.end):
            if not (edge.minute or edge.second):
                continue
            start_s = int((edge.replace(minute=0, second=0) - START).total_seconds())
            lo, hi = bounds[index], bounds[index + 1]
            a, b = np.searchsorted(ev["seconds"][lo:hi], [start_s, start_s + 3600])
            for i in range(lo + a, lo + b):
                at = START + timedelta(seconds=int(ev["seconds"][i]), microseconds=int(ev["micros"][i]))
                raw.append((f"e{i}", at, f"t{index:04d}", tier_of(index), "/v1/chat/completions",
                            MODELS[ev["model"][i]], int(ev["prompt"][i]), int(ev["completion"][i]),
                            int(ev["cached"][i]), "engine", zero, "success", 200, zero, zero))
    return hourly, raw


def load_sqlite(path: Path, hourly: list[tuple[Any, ...]], raw: list[tuple[Any, ...]]) -> None:
    """Straight into the file (sqlite3, one transaction), as the store encodes them: times as text,
    money and milliseconds as integer units (``store.models.Fixed``)."""
    db = sqlite3.connect(path)
    db.executemany(f"INSERT INTO usage_hourly ({', '.join(HOURLY)}) VALUES ({', '.join('?' * len(HOURLY))})",
                   ((*r[:1], _stamp(r[1]), *r[2:11], 0, 0, 0) for r in hourly))
    db.executemany(f"INSERT INTO usage_events ({', '.join(EVENTS)}) VALUES ({', '.join('?' * len(EVENTS))})",
                   ((r[0], _stamp(r[1]), *r[2:10], 0, r[11], r[12], 0, 0) for r in raw))
    db.commit()
    db.close()


async def load_postgres(database: Database, hourly: list[tuple[Any, ...]], raw: list[tuple[Any, ...]]) -> None:
    """With COPY (asyncpg), after creating the months' partitions of ``usage_events``."""
    async with database.engine.connect() as connection:
        for month in (datetime(2026, 2, 1, tzinfo=UTC), MONTH, datetime(2026, 4, 1, tzinfo=UTC)):
            await create_partition(connection, month)
        await connection.commit()
        driver = (await connection.get_raw_connection()).driver_connection
        await driver.copy_records_to_table("usage_hourly", records=hourly, columns=list(HOURLY))
        await driver.copy_records_to_table("usage_events", records=raw, columns=list(EVENTS))


async def rate_store(url: str, tenants: int) -> tuple[dict[str, list[Line]], float]:
    database = Database(url, timeout_s=60.0)
    store = SqlBillingStore(database)
    engine = BillingEngine(SETTINGS, store, SqlBillingUsage(database), BOOK)
    now = datetime.now(UTC)
    for index in range(tenants):
        await store.put_account(account_of(index), now)
    found: dict[str, list[Line]] = {}
    began = time.perf_counter()
    for index in range(tenants):
        account = await engine.account(f"t{index:04d}")
        period: Period = await engine.period_of(account.tenant, MONTH)
        found[account.tenant] = await engine.rate(account.tenant, period, account.plan)
    elapsed = time.perf_counter() - began
    await database.close()
    return found, elapsed


async def on_postgres(hourly: list[tuple[Any, ...]], raw: list[tuple[Any, ...]],
                      tenants: int) -> tuple[dict[str, list[Line]], float, float]:
    name = f"inferlab_bench_billing_{uuid.uuid4().hex[:8]}"
    admin = Database(f"{PG_SERVER}/postgres")
    async with admin.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database = Database(f"{PG_SERVER}/{name}", timeout_s=120)
        await upgrade(database)
        began = time.perf_counter()
        await load_postgres(database, hourly, raw)
        loaded = time.perf_counter() - began
        await database.close()
        rated, elapsed = await rate_store(f"{PG_SERVER}/{name}", tenants)
        return rated, elapsed, loaded
    finally:
        async with admin.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()


async def prepare(path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(database)
    await database.close()


def report(store: str, rated: dict[str, list[Line]], reference: dict[str, list[Line]], seconds: float,
           tenants: int) -> bool:
    lines = sum(len(v) for v in rated.values())
    total = sum((line.amount for v in rated.values() for line in v), start=Decimal(0))
    same = rated == reference
    print(f"rated {tenants:,} tenants' periods from the rollups (BillingEngine over SqlBillingUsage, {store}): "
          f"{seconds:.1f} s, {lines:,} lines, total {total} USD; identical to rating the raw events: {same}")
    if not same:
        print(f"differing tenants: {[t for t in reference if reference[t] != rated.get(t)][:10]}")
    return same and seconds <= 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (127.0.0.1:5432, a throwaway database)")
    args = parser.parse_args()
    began = time.perf_counter()
    ev = generate(args.tenants, args.events, args.seed)
    print(f"generated {args.events:,} events for {args.tenants:,} tenants in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    reference = rate_raw(ev, args.tenants)
    raw_s = time.perf_counter() - began
    print(f"rated from the raw events (numpy sums per segment): {raw_s:.1f} s")
    began = time.perf_counter()
    hourly, raw = ledger_rows(ev, args.tenants)
    print(f"built {len(hourly):,} hourly rollup rows and {len(raw):,} raw events of cut hours in "
          f"{time.perf_counter() - began:.1f} s")
    ok = True
    if "sqlite" in args.stores:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "billing.db"
            asyncio.run(prepare(path))
            began = time.perf_counter()
            load_sqlite(path, hourly, raw)
            print(f"loaded them into SQLite in {time.perf_counter() - began:.1f} s")
            rated, seconds = asyncio.run(rate_store(f"sqlite+aiosqlite:///{path}", args.tenants))
        ok &= report("SQLite", rated, reference, seconds, args.tenants)
    if "postgres" in args.stores:
        rated, seconds, loaded = asyncio.run(on_postgres(hourly, raw, args.tenants))
        print(f"loaded them into PostgreSQL (COPY) in {loaded:.1f} s")
        ok &= report("PostgreSQL", rated, reference, seconds, args.tenants)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
