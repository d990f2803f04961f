"""``kill -9`` of a gateway (a real ``inferlab serve`` process) under streaming load, then a restart
on the same data directory: every answer the load generator saw end has exactly one usage event in
PostgreSQL, and no event is stored twice. The load generator counts for itself.

Why it holds: a successful answer's last bytes follow its event into the outbox's journal (one
append to a file, in the kernel's hands once written), which a killed process cannot take back; the
restarted gateway reads the journal back into the outbox and ships what the killed one left
unshipped, idempotently.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from inferlab.store import Database
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.needs import migrated_postgres_database

from .load import LoadGenerator

MODEL = "sim-model"
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@pytest.fixture
def database_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_killed") as name:
        yield f"{PG}/{name}"


async def usage_rows(url: str) -> list[tuple[str, str | None]]:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, request_id FROM usage_events"))
            return [(row[0], row[1]) for row in rows]
    finally:
        await database.close()


def config(sim: EngineSimulator, database_url: str) -> dict[str, Any]:
    return {"database_url": database_url, "logging": {"level": "INFO"},
            "metering": {"ship_interval_s": 0.2, "flush_interval_ms": 200},
            "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}]}


@pytest.mark.postgres
@pytest.mark.timeout(240)
async def test_every_answer_seen_complete_before_kill_9_has_exactly_one_event(database_url: str) -> None:
    sim = EngineSimulator(SimulatorScript(completion_tokens=12, token_delay_s=0.004), model=MODEL)
    await sim.start()
    first = GatewayProcess(config(sim, database_url))
    second: GatewayProcess | None = None
    try:
        await asyncio.to_thread(first.start)
        load = LoadGenerator(first.url, MODEL, clients=8, pause_s=0.0, streamed=True)
        stop = asyncio.Event()
        running = asyncio.get_running_loop().create_task(load.run_until(stop))
        await asyncio.sleep(4.0)
        before_kill = len(load.completed)
        await asyncio.to_thread(first.kill)  # mid-stream for the 8 clients
        await asyncio.sleep(0.5)
        stop.set()
        await running
        assert before_kill > 100 and load.failed >= 1  # load was running, and the kill cut some streams

        outbox = sqlite3.connect(first.workdir / "data" / "usage-outbox.db")
        left = outbox.execute("SELECT count(*) FROM usage_outbox WHERE shipped_at IS NULL").fetchone()[0]
        outbox.close()

        second = GatewayProcess(config(sim, database_url), workdir=first.workdir, port=first.port)
        await asyncio.to_thread(second.start)  # ships what the killed one left
        for _ in range(300):
            rows = await usage_rows(database_url)
            if load.completed <= {request_id for _, request_id in rows}:
                break
            await asyncio.sleep(0.1)
        rows = await usage_rows(database_url)
        per_request: dict[str | None, int] = {}
        for _, request_id in rows:
            per_request[request_id] = per_request.get(request_id, 0) + 1
        assert len(rows) == len({event_id for event_id, _ in rows}), "an event stored twice"
        wrong = {rid: per_request.get(rid, 0) for rid in load.completed if per_request.get(rid, 0) != 1}
        assert wrong == {}, f"{len(wrong)} of {len(load.completed)} completed answers without exactly one event"
        print(f"\n{len(load.completed)} answers seen complete, {len(rows)} events stored "
              f"({left} were left unshipped in the outbox by the killed gateway)")
    finally:
        if second is not None:
            await asyncio.to_thread(second.stop)
        elif first.process is not None and first.process.poll() is None:
            await asyncio.to_thread(first.stop)
        await sim.stop()
