"""SIGTERM (a real ``inferlab serve`` process): the outbox is flushed before exit — every event
buffered is committed to the file, and the shipper makes a last attempt to ship it. With the store
unreachable the events wait in the outbox; the next start ships them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from inferlab.store import Database
from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess, free_port
from inferlab.testing.needs import migrated_postgres_database

MODEL = "sim-model"
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@pytest.fixture
def database_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_sigterm") as name:
        yield f"{PG}/{name}"


def config(sim: EngineSimulator, database_url: str) -> dict[str, Any]:
    # nothing waits for the outbox, nothing is written for 10 s, nothing shipped while running:
    # only the shutdown can put the events in the file and the store
    return {"database_url": database_url, "logging": {"level": "INFO"},
            "metering": {"acknowledge": False, "flush_interval_ms": 10_000, "flush_max_events": 100_000,
                         "ship_interval_s": 600, "shutdown_timeout_s": 2},
            "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}]}


async def answer(gateway: GatewayProcess, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": i % 2 == 0}
            async with session.post(gateway.url + "/v1/chat/completions", json=body) as response:
                assert response.status == 200
                await response.read()


def outbox_rows(data_dir: Path) -> tuple[int, int]:
    """(pending, shipped) in the outbox file, read as the next process would."""
    connection = sqlite3.connect(data_dir / "usage-outbox.db")
    try:
        row = connection.execute("SELECT count(*) FILTER (WHERE shipped_at IS NULL), "
                                 "count(*) FILTER (WHERE shipped_at IS NOT NULL) FROM usage_outbox").fetchone()
        return int(row[0]), int(row[1])
    finally:
        connection.close()


async def stored(url: str) -> int:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM usage_events"))).scalar_one())
    finally:
        await database.close()


@pytest.mark.postgres
@pytest.mark.timeout(180)
async def test_sigterm_flushes_the_outbox_and_ships_what_it_can(database_url: str) -> None:
    sim = EngineSimulator(SimulatorScript(completion_tokens=4), model=MODEL)
    await sim.start()
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens
    first = GatewayProcess(config(sim, unreachable))
    second: GatewayProcess | None = None
    try:
        await asyncio.to_thread(first.start)
        await answer(first, 20)
        assert await asyncio.to_thread(first.stop) == 0  # SIGTERM
        assert outbox_rows(first.workdir / "data") == (20, 0)  # committed at SIGTERM, kept: the store was down

        second = GatewayProcess(config(sim, database_url), workdir=first.workdir, port=first.port)
        await asyncio.to_thread(second.start)
        await answer(second, 10)
        assert await asyncio.to_thread(second.stop) == 0
        assert outbox_rows(first.workdir / "data") == (0, 30)  # the 20 left over and the 10 new, shipped at exit
        assert await stored(database_url) == 30
    finally:
        for gateway in (first, second):
            if gateway is not None and gateway.process is not None and gateway.process.poll() is None:
                await asyncio.to_thread(gateway.stop)
        await sim.stop()
