"""Budget alerts against a real local HTTP receiver: signed, retried, sent once per tenant, month,
quota and threshold — also across two gateways sharing the store — and run by the Lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.config import Settings
from inferlab.config.usage import AlertSettings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.alerts import Budget, BudgetAlerts, WebhookSender, sign, verify
from inferlab.metering.forecast import Forecaster
from inferlab.store import Database, upgrade
from inferlab.store.alerts import SqlAlertLedger
from inferlab.store.usage import SqlUsageStore
from inferlab.store.usage_analytics import SqlUsageAnalytics
from inferlab.testing import EngineSimulator

SECRET = "whsec-test-0123456789"
NOW = datetime.now(UTC)


@dataclass
class Receiver:
    url: str = ""
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before a 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()

    async def hook(request: web.Request) -> web.Response:
        found.attempts += 1
        if found.fail_next:
            return web.Response(status=found.fail_next.pop(0))
        found.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app) as server:
        found.url = str(server.make_url("/hook"))
        yield found


def _event(n: int, tenant: str, tokens: int, at: datetime) -> UsageEvent:
    return UsageEvent(id=f"a{n}-{tenant}", time=at, tenant=tenant, user=None, key="k", tier="pro",
                      route="/v1/chat/completions", model="m", model_version=None, replica="r0", hardware=None,
                      prompt_tokens=tokens, completion_tokens=0, cached_tokens=0, token_source=TokenSource.ENGINE,
                      queue_ms=None, ttft_ms=None, duration_ms=1.0, status=EventStatus.SUCCESS, http_status=200,
                      price=Decimal("0.5"))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await upgrade(database)
    today = NOW.replace(hour=0, minute=0)
    # acme: 2,000 tokens a day for 20 days (this month's days among them); globex: 10 a day
    await SqlUsageStore(database).insert_batch(
        [_event(d, "acme", 2000, today - timedelta(days=d)) for d in range(20)]
        + [_event(d, "globex", 10, today - timedelta(days=d)) for d in range(20)])
    yield database
    await database.close()


def _alerts(database: Database, session: aiohttp.ClientSession, settings: AlertSettings) -> BudgetAlerts:
    async def budget_of(tenant: str) -> Budget:
        return Budget(monthly_tokens=20_000.0, monthly_spend_usd=1000.0)

    return BudgetAlerts(Forecaster(SqlUsageAnalytics(database)), budget_of, SqlAlertLedger(database),
                        WebhookSender(session, settings), settings, logging.getLogger("test"))


def _settings(receiver: Receiver, **changes: Any) -> AlertSettings:
    return AlertSettings(enabled=True, webhook_url=receiver.url, secret=SECRET, backoff_s=0.01, **changes)


async def test_a_crossing_is_posted_signed_once(database: Database, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        alerts = _alerts(database, session, _settings(receiver, thresholds=[0.5, 1.0, 100.0]))
        month = NOW.strftime("%Y-%m")
        # acme's month heads for ~60,000 tokens of 20,000: 50 % and 100 % crossed, 10,000 % not
        assert sorted(await alerts.check()) == [f"acme:{month}:monthly_tokens:0.5", f"acme:{month}:monthly_tokens:1"]
        assert await alerts.check() == []  # deduplicated
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        assert verify(SECRET.encode(), body, headers["x-inferlab-signature"], now=time.time())
        assert not verify(b"another secret", body, headers["x-inferlab-signature"], now=time.time())
        payload = orjson.loads(body)
        assert payload["tenant"] == "acme" and payload["id"] == headers["x-inferlab-delivery"]
        assert payload["forecast"]["expected"] >= payload["threshold"] * payload["limit"]
    assert await SqlAlertLedger(database).sent() == sorted(h["x-inferlab-delivery"] for h, _ in receiver.received)


async def test_failures_are_retried_and_a_refusal_is_sent_again_later(database: Database,
                                                                      receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        alerts = _alerts(database, session, _settings(receiver, thresholds=[1.0], retries=3))
        receiver.fail_next = [503, 429, 500]  # three failures, then the fourth attempt succeeds
        assert len(await alerts.check()) == 1 and receiver.attempts == 4
        alerts = _alerts(database, session, _settings(receiver, thresholds=[0.9], retries=3))
        receiver.fail_next = [400]  # refused: not retried now, released for the next check
        assert await alerts.check() == [] and receiver.attempts == 5
        assert len(await alerts.check()) == 1 and receiver.attempts == 6


async def test_two_gateways_sharing_the_store_send_each_alert_once(database: Database, receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        first, second = (_alerts(database, session, _settings(receiver, thresholds=[0.5, 1.0])) for _ in range(2))
        sent = await asyncio.gather(first.check(), second.check())
    assert sorted(sent[0] + sent[1]) == sorted({*sent[0], *sent[1]}) and len(sent[0] + sent[1]) == 2
    assert len(receiver.received) == 2


def test_a_signature_is_refused_when_stale_or_malformed() -> None:
    body = b'{"x":1}'
    header = sign(b"k", body, 1_000)
    assert verify(b"k", body, header, now=1_100) and not verify(b"k", body, header, now=2_000)
    assert not verify(b"k", body, "v1=abc", now=1_000) and not verify(b"k", body + b" ", header, now=1_000)


async def test_the_gateway_runs_the_alerts_on_its_lifecycle(sim: EngineSimulator, tmp_path: Path,
                                                           receiver: Receiver) -> None:
    assert sim.base_url is not None
    settings = Settings(
        data_dir=tmp_path, features={"auth": True}, auth={"pepper": "p" * 32, "bootstrap": False},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
        quota={"limits": [{"scope": "tenant", "monthly_tokens": 1000}]},
        usage={"alerts": {"enabled": True, "webhook_url": receiver.url, "secret": SECRET, "interval_s": 1,
                          "thresholds": [1.0]}})
    app = await create_app(settings)
    async with TestClient(TestServer(app)) as client:
        services = client.app[SERVICES]
        assert services.usage is not None and services.usage.alerts is not None
        await SqlUsageStore(services.admin.auth.database).insert_batch([_event(1, "default", 5000, NOW)])
        for _ in range(100):
            if receiver.received:
                break
            await asyncio.sleep(0.1)
    [(headers, body)] = receiver.received
    assert orjson.loads(body)["quota"] == "monthly_tokens" and orjson.loads(body)["limit"] == 1000
    assert verify(SECRET.encode(), body, headers["x-inferlab-signature"], now=time.time())
