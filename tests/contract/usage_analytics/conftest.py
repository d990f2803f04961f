"""One analytics suite, every implementation: the store's rollups on SQLite and PostgreSQL, and
ClickHouse's summing tables through chDB (in process) and, when ``INFERLAB_TEST_CLICKHOUSE_URL``
is set, a ClickHouse server. Each is fed through its own writer (the store's idempotent insert,
the ClickHouse sink) and asked the same questions."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from inferlab.metering.analytics import UsageAnalytics
from inferlab.metering.event import UsageEvent
from inferlab.store import Database, upgrade
from inferlab.store.usage import SqlUsageStore
from inferlab.store.usage_analytics import SqlUsageAnalytics
from inferlab.testing.needs import migrated_postgres_database, require

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
CLICKHOUSE_URL = (os.environ.get("INFERLAB_TEST_CLICKHOUSE_URL")
                  or os.environ.get("INFERLAB_USAGE__ANALYTICS__CLICKHOUSE_URL"))  # usage.analytics.clickhouse_url
IMPLEMENTATIONS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "chdb",
                   pytest.param("clickhouse", marks=pytest.mark.skipif(  # a server is optional, in CI too
                       CLICKHOUSE_URL is None, reason="INFERLAB_TEST_CLICKHOUSE_URL is not set"))]


@dataclass
class Ledger:
    write: Callable[[Sequence[UsageEvent]], Awaitable[int]]
    analytics: UsageAnalytics
    name: str


@pytest.fixture(scope="session")
def analytics_postgres_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_analytics") as name:
        yield f"{PG_SERVER}/{name}"


async def _store(url: str, name: str) -> AsyncIterator[Ledger]:
    database = Database(url)
    await upgrade(database)
    if database.dialect == "postgresql":
        async with database.engine.begin() as connection:
            from sqlalchemy import text

            await connection.execute(text("TRUNCATE usage_events, usage_hourly, usage_daily"))
    yield Ledger(SqlUsageStore(database).insert_batch, SqlUsageAnalytics(database), name)
    await database.close()


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, the store's URL for the SQL ones)"""
    if request.param == "sqlite":
        return "sqlite", f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgres":
        return "postgres", str(request.getfixturevalue("analytics_postgres_url"))
    return str(request.param), ""


@pytest.fixture
async def ledger(implementation: tuple[str, str]) -> AsyncIterator[Ledger]:
    from inferlab.metering.clickhouse import ChdbClickHouse, ClickHouseUsage, HttpClickHouse

    kind, url = implementation
    if kind in ("sqlite", "postgres"):
        async for found in _store(url, kind):
            yield found
    elif kind == "chdb":
        try:
            client = ChdbClickHouse()
        except ImportError:
            require(False, "chdb is not installed (pip install 'inferlab[analytics]')")
            raise
        usage = ClickHouseUsage(client, f"t_{uuid.uuid4().hex[:12]}")
        await usage.create()
        yield Ledger(usage.write, usage, kind)
        await client.execute(f"DROP DATABASE IF EXISTS {usage.database}")
        client.close()
    else:
        assert CLICKHOUSE_URL is not None
        async with aiohttp.ClientSession() as session:
            usage = ClickHouseUsage(HttpClickHouse(CLICKHOUSE_URL, session), f"t_{uuid.uuid4().hex[:12]}")
            await usage.create()
            yield Ledger(usage.write, usage, kind)
            await session.post(CLICKHOUSE_URL, data=f"DROP DATABASE IF EXISTS {usage.database}")
