"""PostgreSQL stopped for 60 s under load, then started again: no usage event lost, none stored
twice, and the request path's latency unchanged while it was down — the outbox absorbs it.

The database is a private cluster (``inferlab.testing.postgres``: its own initdb, port and
directory), stopped with ``pg_ctl stop -m immediate`` (as a crash) — never the shared server other
tests use. Authentication is off, so the database holds nothing but the usage ledger; the load
generator counts the answers it saw complete and compares with what the store holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.store import Database, upgrade
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.needs import require
from inferlab.testing.postgres import PrivatePostgres

from .load import LoadGenerator, percentile

MODEL = "sim-model"
OUTAGE_S = 60.0
BEFORE_S = AFTER_S = 8.0


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    reason = PrivatePostgres.unavailable()
    require(reason is None, reason or "")
    postgres = PrivatePostgres.create()
    postgres.start()
    yield postgres
    postgres.destroy()


async def stored(database: Database) -> list[tuple[str, str | None]]:
    async with database.engine.connect() as connection:
        return [(row[0], row[1]) for row in await connection.execute(text("SELECT id, request_id FROM usage_events"))]


@pytest.mark.timeout(300)
async def test_sixty_seconds_without_postgres_lose_nothing_and_slow_nothing(cluster: PrivatePostgres,
                                                                              tmp_path: Path) -> None:
    url = f"{cluster.server_url}/postgres"
    database = Database(url, timeout_s=5.0)
    await upgrade(database)
    sim = EngineSimulator(SimulatorScript(completion_tokens=8, token_delay_s=0.001), model=MODEL)
    await sim.start()
    settings = Settings(
        data_dir=tmp_path, database_url=url,
        auth={"store_timeout_s": 1.0, "store_retry_s": 0.5},
        metering={"ship_interval_s": 0.2, "retry_initial_s": 0.2, "retry_max_s": 2.0},
        models=[{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    )
    server = TestServer(await create_app(settings))
    await server.start_server()
    services = server.app[SERVICES]
    load = LoadGenerator(str(server.make_url("")).rstrip("/"), MODEL, clients=4, pause_s=0.02)
    stop = asyncio.Event()
    running = asyncio.get_running_loop().create_task(load.run_until(stop))
    try:
        await asyncio.sleep(BEFORE_S)
        down_at = time.monotonic()
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        await asyncio.sleep(AFTER_S)
    finally:
        stop.set()
        await running
    shipper = services.metering.shipper
    # The last answers' events may be between the buffer and the outbox's file (the writer's thread
    # has taken them, not yet committed): neither buffered nor pending. Wait for the commit first.
    assert await services.metering.outbox.flush(10.0)
    for _ in range(600):  # the backlog of the outage ships (each batch idempotent)
        if (await services.metering.outbox.counts())["pending"] == 0 and services.metering.outbox.buffered == 0:
            break
        await asyncio.sleep(0.1)
    rows = await stored(database)
    await server.close()
    await sim.stop()
    await database.close()

    by_request = {}
    for event_id, request_id in rows:
        by_request.setdefault(request_id, []).append(event_id)
    assert len(rows) == len({event_id for event_id, _ in rows})  # no event stored twice
    missing = [rid for rid in load.completed if len(by_request.get(rid, [])) != 1]
    assert missing == [], f"{len(missing)} answers without exactly one usage event"
    assert load.failed == 0 and len(load.completed) == len(rows)  # every request answered, none unmetered
    assert shipper.shipped_total >= len(rows)

    before = load.latencies_between(down_at - BEFORE_S, down_at)
    during = load.latencies_between(down_at + 1.0, up_at)
    assert len(during) > 100, "the load ran during the outage"
    p50_before, p50_during = percentile(before, 0.5), percentile(during, 0.5)
    p99_before, p99_during = percentile(before, 0.99), percentile(during, 0.99)
    print(f"\nlatency p50 {p50_before * 1000:.2f} → {p50_during * 1000:.2f} ms, "
          f"p99 {p99_before * 1000:.2f} → {p99_during * 1000:.2f} ms; {len(rows)} events, "
          f"{len(during)} answers during the outage")
    assert p50_during <= p50_before * 1.5 + 0.002
    assert p99_during <= p99_before * 3 + 0.020
