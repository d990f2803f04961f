"""ClickHouse as the production analytics sink: ``ClickHouseUsage`` is a ``UsageSink`` (fed by the
shipper) and a ``UsageAnalytics`` (read by the reports).

Tables (``ddl(database)``):

- ``usage_events``: ``ReplacingMergeTree`` partitioned by month, ordered by (tenant, time, id) —
  one tenant's range of time is one contiguous read; a row written twice collapses on merge.
- ``usage_hourly`` / ``usage_daily``: ``SummingMergeTree`` ordered by (tenant, bucket, tier,
  model, key, replica, status), the store's rollup keys, fed by materialized views on insert into
  ``usage_events``. Reads always ``sum() … GROUP BY``, so parts not merged yet are summed too.
- Hardware cost, attributed after the fact (``metering/costing.py``), reaches ClickHouse as rows
  of the rollup tables that carry only a cost (``costed``: zero requests and tokens), one insert
  per window and grain with a deduplication token of the window, so a window sent twice (the store
  refused to record it, the job tried again) counts once. ``usage_events.hardware_cost`` stays
  what the event carried when shipped: per-request costs are read from the store.

Exactly once: a materialized view counts what is inserted, so the sink never inserts an event that
is already there: it asks which ids of the batch exist (one range read on the sort key) and
inserts only the rest, with an insert deduplication token (a digest of those ids), so a retried
insert of the same rows is dropped by ClickHouse itself, views included. The shipper writes one
batch at a time per gateway, and an event id belongs to one gateway's outbox, so no two writers
race on one id.

Two clients speak the same SQL: ``HttpClickHouse`` (a server's HTTP interface, ``clickhouse_url``)
and ``ChdbClickHouse`` (chDB, ClickHouse's engine in process: the tests, and a single-node
deployment without a server). Money is ``Decimal(38, 10)``, read back as text, never as a float.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

from inferlab.metering.analytics import COLUMN, UsageQuery, UsageRow, bucket_label, sort_rows
from inferlab.metering.cost import from_quanta
from inferlab.metering.costing import CostPart
from inferlab.metering.event import UsageEvent
from inferlab.store.usage_rollup import Grain, RollupKey, UsageSums, key_of

ROLLUP_KEY = "tenant, bucket, tier, model, key_id, replica, status"
SUMMED = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens")


class ClickHouseClient(Protocol):
    async def execute(self, sql: str, data: bytes = b"", settings: dict[str, str] | None = None) -> bytes:
        """Run one statement (``data``: the rows of an ``INSERT … FORMAT JSONEachRow``); its output."""
        ...


def ddl(database: str) -> list[str]:
    rollup_columns = """
        bucket DateTime('UTC'), tenant LowCardinality(String), tier LowCardinality(String),
        model LowCardinality(String), key_id String, replica LowCardinality(String), status LowCardinality(String),
        requests UInt64, prompt_tokens UInt64, completion_tokens UInt64, cached_tokens UInt64,
        price Decimal(38, 10), hardware_cost Decimal(38, 10), duration_ms Decimal(38, 3)"""
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"""CREATE TABLE IF NOT EXISTS {database}.usage_events (
            id String, time DateTime64(6, 'UTC'), request_id Nullable(String), tenant LowCardinality(String),
            user_id Nullable(String), key_id String, tier LowCardinality(String), route LowCardinality(String),
            model LowCardinality(String), model_version Nullable(String), replica LowCardinality(String),
            hardware LowCardinality(String), prompt_tokens UInt32, completion_tokens UInt32, cached_tokens UInt32,
            token_source LowCardinality(String), queue_ms Nullable(Decimal(18, 3)), ttft_ms Nullable(Decimal(18, 3)),
            duration_ms Decimal(18, 3), status LowCardinality(String), http_status UInt16,
            price Decimal(38, 10), hardware_cost Decimal(38, 10)
        ) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(time) ORDER BY (tenant, time, id)
        SETTINGS non_replicated_deduplication_window = 1000""",
    ]
    for grain, start in (("hourly", "toStartOfHour"), ("daily", "toStartOfDay")):
        statements += [
            f"""CREATE TABLE IF NOT EXISTS {database}.usage_{grain} ({rollup_columns})
            ENGINE = SummingMergeTree PARTITION BY toYYYYMM(bucket) ORDER BY ({ROLLUP_KEY})
            SETTINGS non_replicated_deduplication_window = 1000""",
            # tables made before the cost rows: the deduplication they need
            f"ALTER TABLE {database}.usage_{grain} MODIFY SETTING non_replicated_deduplication_window = 1000",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_{grain}_mv TO {database}.usage_{grain} AS
            SELECT {start}(time, 'UTC') AS bucket, tenant, tier, model, key_id, replica, status,
                   count() AS requests, sum(prompt_tokens) AS prompt_tokens,
                   sum(completion_tokens) AS completion_tokens, sum(cached_tokens) AS cached_tokens,
                   sum(price) AS price, sum(hardware_cost) AS hardware_cost, sum(duration_ms) AS duration_ms
            FROM {database}.usage_events GROUP BY {ROLLUP_KEY}""",
        ]
    return statements


def _millis(value: float | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(Decimal("0.001")))


def _row(event: UsageEvent) -> bytes:
    return orjson.dumps({
        "id": event.id, "time": event.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "request_id": event.request_id, "tenant": event.tenant, "user_id": event.user, "key_id": event.key or "",
        "tier": event.tier, "route": event.route, "model": event.model, "model_version": event.model_version,
        "replica": event.replica or "", "hardware": event.hardware or "", "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens, "cached_tokens": event.cached_tokens,
        "token_source": event.token_source.value, "queue_ms": _millis(event.queue_ms),
        "ttft_ms": _millis(event.ttft_ms), "duration_ms": _millis(event.duration_ms), "status": event.status.value,
        "http_status": event.http_status, "price": str(event.price), "hardware_cost": str(event.hardware_cost),
    })


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rows(output: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines() if line.strip()]


class ClickHouseUsage:
    """The sink and the analytics over one ClickHouse database."""

    def __init__(self, client: ClickHouseClient, database: str = "inferlab") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError("a ClickHouse database name is letters, digits and _")
        self._client = client
        self._db = database

    @property
    def database(self) -> str:
        return self._db

    async def create(self) -> None:
        for statement in ddl(self._db):
            await self._client.execute(statement)

    async def write(self, events: Sequence[UsageEvent]) -> int:
        unique = list({event.id: event for event in events}.values())
        if not unique:
            return 0
        stored = await self._stored(unique)
        new = sorted((e for e in unique if e.id not in stored), key=lambda e: e.id)
        if new:
            token = hashlib.sha256("\n".join(e.id for e in new).encode()).hexdigest()
            await self._client.execute(
                f"INSERT INTO {self._db}.usage_events FORMAT JSONEachRow", b"\n".join(_row(e) for e in new),
                {"insert_deduplication_token": token, "deduplicate_blocks_in_dependent_materialized_views": "1",
                 "date_time_input_format": "best_effort"})
        return len(new)

    async def costed(self, window: datetime, parts: Sequence[CostPart]) -> None:
        """Add a window's hardware costs to the rollups (a ``CostSink``), once per window."""
        grains: tuple[tuple[Grain, str], ...] = (("hour", "usage_hourly"), ("day", "usage_daily"))
        for grain, table in grains:
            sums: dict[RollupKey, int] = {}
            for part in parts:
                key = key_of(part.event, grain)
                sums[key] = sums.get(key, 0) + part.quanta
            rows = b"\n".join(orjson.dumps({
                "bucket": key.bucket.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), "tenant": key.tenant,
                "tier": key.tier, "model": key.model, "key_id": key.key_id, "replica": key.replica, "status": key.status,
                "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "price": "0",
                "hardware_cost": str(from_quanta(quanta)), "duration_ms": "0"}) for key, quanta in sorted(sums.items()))
            if rows:
                await self._client.execute(
                    f"INSERT INTO {self._db}.{table} FORMAT JSONEachRow", rows,
                    {"insert_deduplication_token": f"cost-{window.astimezone(UTC).isoformat()}-{grain}",
                     "date_time_input_format": "best_effort"})

    async def _stored(self, events: Sequence[UsageEvent]) -> set[str]:
        tenants = ", ".join(sorted({_quote(e.tenant) for e in events}))
        low = min(e.time for e in events).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        high = max(e.time for e in events).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        ids = ", ".join(_quote(e.id) for e in events)
        output = await self._client.execute(
            f"SELECT DISTINCT id FROM {self._db}.usage_events WHERE tenant IN ({tenants}) "
            f"AND time BETWEEN toDateTime64({_quote(low)}, 6, 'UTC') AND toDateTime64({_quote(high)}, 6, 'UTC') "
            f"AND id IN ({ids}) FORMAT JSONEachRow")
        return {row["id"] for row in _rows(output)}

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        table = f"{self._db}.usage_{'hourly' if query.grain == 'hour' else 'daily'}"
        dims = [f"{COLUMN[d]} AS {d}" if d not in ("day", "hour") else f"toString(bucket) AS {d}"
                for d in query.group_by]
        where = [f"bucket >= toDateTime({_quote(query.start_at.strftime('%Y-%m-%d %H:%M:%S'))}, 'UTC')",
                 f"bucket < toDateTime({_quote(query.end_at.strftime('%Y-%m-%d %H:%M:%S'))}, 'UTC')"]
        for column, values in query.filters().items():
            where.append(f"{column} IN ({', '.join(_quote(v) for v in values) or 'NULL'})")
        sums = [f"sum({name}) AS {name}" for name in SUMMED]
        money = [f"toString(sum({name})) AS {name}" for name in ("price", "hardware_cost")]
        sql = f"SELECT {', '.join([*dims, *sums, *money])} FROM {table} WHERE {' AND '.join(where)}"
        if query.group_by:
            sql += f" GROUP BY {', '.join(query.group_by)}"
        rows = []
        for found in _rows(await self._client.execute(sql + " FORMAT JSONEachRow")):
            if int(found["requests"]) == 0:
                continue
            group = tuple((d, _label(d, found[d])) for d in query.group_by)
            rows.append(UsageRow(group, UsageSums(
                int(found["requests"]), int(found["prompt_tokens"]), int(found["completion_tokens"]),
                int(found["cached_tokens"]), Decimal(found["price"]), Decimal(found["hardware_cost"]))))
        return sort_rows(rows)


def _label(dimension: str, value: str) -> str:
    if dimension in ("day", "hour"):
        return bucket_label(dimension, datetime.fromisoformat(value).replace(tzinfo=UTC))  # type: ignore[arg-type]
    return value


class HttpClickHouse:
    """A ClickHouse server's HTTP interface (``clickhouse_url``: http://user:password@host:8123)."""

    def __init__(self, url: str, session: Any, *, timeout_s: float = 10.0) -> None:
        import aiohttp
        from yarl import URL

        parsed = URL(url)
        self._url = parsed.with_user(None).with_password(None)
        self._auth = aiohttp.BasicAuth(parsed.user or "default", parsed.password or "") if parsed.user else None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def execute(self, sql: str, data: bytes = b"", settings: dict[str, str] | None = None) -> bytes:
        params = {**(settings or {})}
        body = sql.encode() + (b"\n" + data if data else b"")
        async with self._session.post(self._url, params=params, data=body, auth=self._auth,
                                      timeout=self._timeout) as response:
            output: bytes = await response.read()
            if response.status != 200:
                raise ClickHouseError(f"ClickHouse answered {response.status}: {output[:500].decode(errors='replace')}")
            return output


class ChdbClickHouse:
    """chDB: ClickHouse's engine in this process (``path``: where its data lives; ``None``: in memory).
    Calls run in a worker thread, one at a time, so the event loop never waits on a query."""

    def __init__(self, path: str | None = None) -> None:
        from chdb import session as chdb_session  # the optional `analytics` extra

        opened: Any = chdb_session.Session
        self._session: Any = opened(path) if path else opened()
        self._lock = asyncio.Lock()

    def _run(self, sql: str, data: bytes, settings: dict[str, str] | None) -> bytes:
        statement = _with_settings(sql, settings) + ("\n" + data.decode() if data else "")
        result = self._session.query(statement, "JSONEachRow")
        return bytes(result.bytes()) if result is not None else b""

    async def execute(self, sql: str, data: bytes = b"", settings: dict[str, str] | None = None) -> bytes:
        async with self._lock:
            return await asyncio.to_thread(self._run, sql, data, settings)

    def close(self) -> None:
        self._session.close()


def _with_settings(insert: str, settings: dict[str, str] | None) -> str:
    """``INSERT INTO t FORMAT F`` → ``INSERT INTO t SETTINGS … FORMAT F``."""
    if not settings:
        return insert
    head, _, fmt = insert.partition(" FORMAT ")
    listed = ", ".join(f"{name} = {_quote(value)}" for name, value in settings.items())
    return f"{head} SETTINGS {listed} FORMAT {fmt}"


class ClickHouseError(RuntimeError):
    pass
