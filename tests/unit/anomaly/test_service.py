"""The ``AnomalyDetector`` service over a real ledger (SQLite and PostgreSQL): a replica that slows down opens one
incident per (kind, subject), alerted once by a signed webhook to a real local HTTP server; two
gateways sharing the store alert once between them; the quiet period closes it (one "closed"
alert); the Prometheus metrics follow."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from inferlab.anomaly.service import AnomalyDetector
from inferlab.metering.alerts import WebhookSender, verify
from inferlab.metrics.anomaly import AnomalyMetrics
from inferlab.store import Database, upgrade
from inferlab.store.anomalies import SqlIncidentStore, SqlUsageWindows
from inferlab.store.usage import SqlUsageStore
from inferlab.testing.needs import migrated_postgres_database

from .ledger import end_of, events, settings

SECRET = "whsec-anomaly-0123456789"
SLOW = range(30, 38)


@dataclass
class Receiver:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()

    async def hook(request: web.Request) -> web.Response:
        found.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app) as server:
        found.url = str(server.make_url("/hook"))
        yield found


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with migrated_postgres_database("inferlab_anomaly_service") as name:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    if db.dialect == "sqlite":
        await upgrade(db)
    else:
        async with db.engine.begin() as connection:
            await connection.execute(text("TRUNCATE usage_events, usage_hourly, usage_daily, anomaly_incidents"))
    await SqlUsageStore(db).insert_batch(events(range(50), slow=SLOW))
    yield db
    await db.close()


def detector(database: Database, session: aiohttp.ClientSession, receiver: Receiver,
             metrics: AnomalyMetrics | None = None) -> AnomalyDetector:
    config = settings(alerts={"webhook_url": receiver.url, "secret": SECRET, "retries": 0})
    return AnomalyDetector(SqlUsageWindows(database), SqlIncidentStore(database), config,
                           logging.getLogger("test.anomaly"), alerter=WebhookSender(session, config.alerts),
                           observer=metrics)


def alerts(receiver: Receiver) -> list[tuple[str, str]]:
    found = []
    for headers, body in receiver.received:
        assert verify(SECRET.encode(), body, headers["x-inferlab-signature"], now=time.time())
        payload = orjson.loads(body)
        found.append((payload["event"], payload["incident"]["key"]))
    return found


async def test_a_slow_replica_is_one_incident_one_alert_then_closed(database: Database, receiver: Receiver) -> None:
    registry = CollectorRegistry()
    metrics = AnomalyMetrics(registry)
    async with aiohttp.ClientSession() as session:
        service = detector(database, session, receiver, metrics)
        opened_at: dict[str, int] = {}
        for interval in range(50):
            changes = await service.tick(end_of(interval))
            opened_at |= {incident.key: interval for incident in changes.opened}
            if interval == 33:
                assert registry.get_sample_value("inferlab_anomaly_open_incidents",
                                                 {"kind": "replica_ttft_ms", "scope": "replica"}) == 1
    assert opened_at["replica_ttft_ms:replica=m/r2"] in (30, 31, 32)  # within 2 intervals of the onset
    assert not any("replica=m/r0" in key or "replica=m/r1" in key for key in opened_at)  # its peers are fine
    assert set(opened_at) == {"replica_ttft_ms:replica=m/r2", "replica_e2e_ms:replica=m/r2",  # its TTFT, in e2e
                              "ttft_ms:model=m", "e2e_ms:model=m"}  # the model's mean moved too; tenants' did not
    sent = alerts(receiver)
    assert sent.count(("opened", "replica_ttft_ms:replica=m/r2")) == 1
    assert sent.count(("closed", "replica_ttft_ms:replica=m/r2")) == 1
    assert len([s for s in sent if s[0] == "opened"]) == len(opened_at)  # one alert per incident, no repeat
    (incident,) = [i for i in await SqlIncidentStore(database).listing() if i.kind == "replica_ttft_ms"]
    assert incident.closed_at is not None and incident.detections >= 6
    assert incident.peak["value"] > 150 and incident.peak["rule"] in ("spike", "level_shift")
    assert registry.get_sample_value("inferlab_anomaly_open_incidents",
                                     {"kind": "replica_ttft_ms", "scope": "replica"}) == 0
    assert registry.get_sample_value("inferlab_anomaly_incidents_total",
                                     {"kind": "replica_ttft_ms", "scope": "replica"}) == 1
    assert sum(registry.get_sample_value("inferlab_anomaly_detections_total",
                                         {"kind": "replica_ttft_ms", "scope": "replica", "rule": rule}) or 0
               for rule in ("spike", "level_shift", "drift")) == incident.detections


async def test_two_gateways_sharing_the_store_alert_once(database: Database, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        first, second = detector(database, session, receiver), detector(database, session, receiver)
        for interval in range(50):
            await first.tick(end_of(interval))
            await second.tick(end_of(interval))
    sent = alerts(receiver)
    assert sent.count(("opened", "replica_ttft_ms:replica=m/r2")) == 1
    assert sent.count(("closed", "replica_ttft_ms:replica=m/r2")) == 1
    stored = [i for i in await SqlIncidentStore(database).listing() if i.kind == "replica_ttft_ms"]
    assert len(stored) == 1


async def test_backfill_learns_the_history_and_adopts_what_is_open(database: Database, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        before = detector(database, session, receiver)
        for interval in range(33):
            await before.tick(end_of(interval))  # r2 slowed at 30: open, alerted
        after = AnomalyDetector(SqlUsageWindows(database), SqlIncidentStore(database),
                                settings(backfill_s=33 * 60, alerts={"webhook_url": receiver.url, "secret": SECRET}),
                                logging.getLogger("test.anomaly"),
                                alerter=WebhookSender(session, settings(alerts={"webhook_url": receiver.url,
                                                                                "secret": SECRET}).alerts))
        assert await after.backfill(end_of(32)) == 33  # a restart: the same 33 intervals, judged silently
        changes = await after.tick(end_of(33))
        assert "replica_ttft_ms:replica=m/r2" not in [i.key for i in changes.opened]  # still the same incident
        assert "replica_ttft_ms:replica=m/r2" in [i.key for i in changes.updated]  # warm: judged, and joined
    assert alerts(receiver).count(("opened", "replica_ttft_ms:replica=m/r2")) == 1


async def test_an_interval_already_judged_is_not_judged_again(database: Database, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        service = detector(database, session, receiver)
        await service.tick(end_of(0))
        assert await service.judge(end_of(0)) == {}


def test_the_alerts_need_both_url_and_secret() -> None:
    with pytest.raises(ValueError, match="webhook_url and secret"):
        settings(alerts={"webhook_url": "http://127.0.0.1:9/hook"})


async def test_the_service_runs_on_the_clock(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    """``run`` (what the Lifecycle starts): backfill, then one interval at each boundary of the clock."""
    service = AnomalyDetector(SqlUsageWindows(database), SqlIncidentStore(database),
                              settings(interval_s=1, backfill_s=3), logging.getLogger("test.anomaly"))
    task = asyncio.get_running_loop().create_task(service.run())
    try:
        await asyncio.sleep(3.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    now = service.interval_of(datetime.now(UTC))
    assert service.last_judged is not None and now - 2 <= service.last_judged <= now
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_detector_needs_the_store(tmp_path: Path) -> None:
    from inferlab.config import Settings

    with pytest.raises(ValueError, match=r"anomaly\.enabled needs the store"):
        Settings(data_dir=tmp_path, features={"metering": False}, anomaly={"enabled": True})
    Settings(data_dir=tmp_path, features={"metering": False, "auth": True}, auth={"pepper": "p" * 32},
             anomaly={"enabled": True})
