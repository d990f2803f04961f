"""The statements behind ``SqlUsageStore.insert_batch``: the events and their rollups in one
transaction, counting only the events that were new.

PostgreSQL: one statement. The batch travels as one JSON parameter (``json_to_recordset``:
cheaper to encode than a parameter per value or an array per column; money as decimal strings,
parsed as NUMERIC, never through a float), the insert
skips events already stored (``ON CONFLICT DO NOTHING``) and hands the new ones (``RETURNING``) to
two more data-modifying CTEs that add their sums to the hourly and daily rollups (an upsert adding
to what is there). Events are inserted in (id, time) order, then the hourly rows, then the daily
ones, each in key order: concurrent shippers (gateways sharing the database, batches overlapping)
take their locks in one global order and cannot deadlock.

SQLite: the same, in three statements of one transaction: the insert returns the new events, the
sums are computed in Python (``store.usage_rollup``) and upserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inferlab.metering.event import UsageEvent
from inferlab.store.models import UsageDailyRow, UsageEventRow, UsageHourlyRow
from inferlab.store.usage_rollup import Grain, millis, rollup

# every column of usage_events, in order, with its PostgreSQL type for the arrays
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "varchar"), ("time", "timestamptz"), ("request_id", "varchar"), ("tenant", "varchar"),
    ("user_id", "varchar"), ("key_id", "varchar"), ("tier", "varchar"), ("route", "varchar"), ("model", "varchar"),
    ("model_version", "varchar"), ("replica", "varchar"), ("hardware", "varchar"), ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"), ("cached_tokens", "int4"), ("token_source", "varchar"), ("queue_ms", "numeric"),
    ("ttft_ms", "numeric"), ("duration_ms", "numeric"), ("status", "varchar"), ("http_status", "int4"),
    ("price", "numeric"), ("hardware_cost", "numeric"),
)
ROLLUP_KEY = ("tenant", "bucket", "tier", "model", "key_id", "replica", "status")
ROLLUP_SUMS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "price", "hardware_cost",
               "duration_ms")
ROLLUP_TABLES: dict[Grain, type[UsageHourlyRow | UsageDailyRow]] = {"hour": UsageHourlyRow, "day": UsageDailyRow}


def _pg_rollup(grain: Grain) -> str:
    table = ROLLUP_TABLES[grain].__tablename__
    key = ", ".join(ROLLUP_KEY)
    added = ", ".join(f"{column} = r.{column} + excluded.{column}" for column in ROLLUP_SUMS)
    return (
        f"{grain}ly AS (INSERT INTO {table} AS r ({key}, {', '.join(ROLLUP_SUMS)}) "
        f"SELECT tenant, date_trunc('{grain}', time, 'UTC'), tier, model, coalesce(key_id, ''), "
        "coalesce(replica, ''), status, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), "
        "sum(price), sum(hardware_cost), sum(duration_ms) "
        "FROM new GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7 "
        f"ON CONFLICT ({key}) DO UPDATE SET {added})"
    )


def _pg_statement() -> str:
    names = ", ".join(name for name, _ in EVENT_COLUMNS)
    record = ", ".join(f'"{name}" {kind}' for name, kind in EVENT_COLUMNS)
    return (
        f"WITH new AS (INSERT INTO usage_events ({names}) "
        f"SELECT {names} FROM json_to_recordset(CAST(:rows AS json)) AS batch({record}) ORDER BY id, time "
        "ON CONFLICT DO NOTHING RETURNING tenant, time, tier, model, key_id, replica, status, prompt_tokens, "
        "completion_tokens, cached_tokens, price, hardware_cost, duration_ms), "
        f"{_pg_rollup('hour')}, {_pg_rollup('day')} SELECT count(*) FROM new"
    )


PG_INSERT = text(_pg_statement())


MONEY_PLACES = Decimal(1).scaleb(-10)  # the columns' scale: NUMERIC(20, 10)


def _money(value: Decimal, event: UsageEvent) -> Decimal:
    if value.quantize(MONEY_PLACES) != value:
        raise ValueError(f"usage event {event.id}: {value} USD has more than 10 decimal places")
    return value


def row_of(event: UsageEvent) -> dict[str, Any]:
    """The event as a ``usage_events`` row (exact milliseconds, enums as their values). Money with
    more than 10 decimal places is refused (``ValueError``), never rounded."""
    return {
        "id": event.id, "time": event.time, "request_id": event.request_id, "tenant": event.tenant,
        "user_id": event.user, "key_id": event.key, "tier": event.tier, "route": event.route, "model": event.model,
        "model_version": event.model_version, "replica": event.replica, "hardware": event.hardware,
        "prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens,
        "cached_tokens": event.cached_tokens, "token_source": event.token_source.value,
        "queue_ms": None if event.queue_ms is None else millis(event.queue_ms),
        "ttft_ms": None if event.ttft_ms is None else millis(event.ttft_ms),
        "duration_ms": millis(event.duration_ms), "status": event.status.value, "http_status": event.http_status,
        "price": _money(event.price, event), "hardware_cost": _money(event.hardware_cost, event),
    }


def _decimal_as_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact: PostgreSQL parses it as NUMERIC, never through a float
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def insert_postgres(session: AsyncSession, events: Sequence[UsageEvent]) -> int:
    rows = orjson.dumps([row_of(event) for event in events], default=_decimal_as_text).decode()
    return int((await session.execute(PG_INSERT, {"rows": rows})).scalar_one())


EVENTS: Table = UsageEventRow.__table__  # type: ignore[assignment]  # a declarative class's Table
SQLITE_INSERT = (sqlite.insert(EVENTS).on_conflict_do_nothing()
                 .returning(EVENTS.c.id, EVENTS.c.time))


def _sqlite_upsert(grain: Grain) -> Any:
    table: Table = ROLLUP_TABLES[grain].__table__  # type: ignore[assignment]
    upsert = sqlite.insert(table)
    return upsert.on_conflict_do_update(index_elements=list(ROLLUP_KEY),
                                        set_={name: table.c[name] + upsert.excluded[name] for name in ROLLUP_SUMS})


SQLITE_UPSERTS = {grain: _sqlite_upsert(grain) for grain in ROLLUP_TABLES}


async def insert_sqlite(session: AsyncSession, events: Sequence[UsageEvent]) -> int:
    """One executemany (SQLAlchemy's "insertmanyvalues": compiled once, sent in pages)."""
    by_id = {(event.id, event.time): event for event in events}
    found = await session.execute(SQLITE_INSERT, [row_of(event) for event in by_id.values()])
    new = [by_id[(row.id, row.time)] for row in found]
    for grain, upsert in SQLITE_UPSERTS.items():
        sums = rollup(new, grain)
        if sums:
            await session.execute(upsert, [
                {"tenant": k.tenant, "bucket": k.bucket, "tier": k.tier, "model": k.model, "key_id": k.key_id,
                 "replica": k.replica, "status": k.status, "requests": s.requests, "prompt_tokens": s.prompt_tokens,
                 "completion_tokens": s.completion_tokens, "cached_tokens": s.cached_tokens, "price": s.price,
                 "hardware_cost": s.hardware_cost, "duration_ms": s.duration_ms}
                for k, s in sorted(sums.items())])
    return len(new)
