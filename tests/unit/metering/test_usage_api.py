"""``GET /v1/usage`` through a real gateway: the caller's tenant only, whatever is asked — a
property over random multi-tenant event streams — and ``/admin/usage`` for platform admins."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store.usage import SqlUsageStore
from inferlab.testing import EngineSimulator

Client = TestClient[Any, Any]
TENANTS = ("acme", "globex", "initech")
_windows = itertools.count()


@dataclass
class Gateway:
    client: Client
    store: SqlUsageStore
    tokens: dict[str, str]  # tenant (or "admin", "acme-admin") → bearer token

    async def get(self, who: str, path: str) -> tuple[int, Any]:
        answer = await self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        if answer.content_type == "text/csv":
            return answer.status, await answer.text()
        return answer.status, await answer.json()


@pytest.fixture
async def gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[Gateway]:
    assert sim.base_url is not None
    app = await create_app(Settings(
        data_dir=tmp_path, features={"auth": True}, auth={"pepper": "p" * 32, "bootstrap": False},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}]))
    async with TestClient(TestServer(app)) as client:
        admin = client.app[SERVICES].admin
        stack = admin.auth
        tokens = {}
        for tenant in TENANTS:
            await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
        for who, tenant, role in [*((t, t, "member") for t in TENANTS), ("acme-admin", "acme", "tenant-admin"),
                                  ("admin", "default", "platform-admin")]:
            user = await stack.admin.create_user(LOCAL_OPERATOR, f"u-{who}", role, tenant)  # type: ignore[arg-type]
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                                   scopes=Scopes(frozenset({"inference", "admin"})))
            tokens[who] = created.token
        yield Gateway(client, SqlUsageStore(stack.database), tokens)


def _event(n: int, tenant: str, at: datetime, model: str, key: str | None, prompt: int, completion: int,
           micros: int) -> UsageEvent:
    return UsageEvent(id=f"ev-{n}-{at.timestamp():.0f}-{tenant}", time=at, tenant=tenant, user=None, key=key,
                      tier="pro", route="/v1/chat/completions", model=model, model_version=None, replica="r0",
                      hardware=None, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0,
                      token_source=TokenSource.ENGINE, queue_ms=None, ttft_ms=None, duration_ms=10.0,
                      status=EventStatus.SUCCESS, http_status=200, price=Decimal(micros).scaleb(-6),
                      hardware_cost=Decimal(micros // 3).scaleb(-6))


def _expected(events: list[UsageEvent]) -> dict[tuple[str, str, str], tuple[int, int, int, Decimal]]:
    sums: dict[tuple[str, str, str], tuple[int, int, int, Decimal]] = {}
    for e in events:
        group = (e.time.date().isoformat(), e.model, e.key or "")
        requests, prompt, completion, price = sums.get(group, (0, 0, 0, Decimal(0)))
        sums[group] = (requests + 1, prompt + e.prompt_tokens, completion + e.completion_tokens, price + e.price)
    return sums


STREAMS = st.lists(st.tuples(st.sampled_from(TENANTS), st.integers(0, 4 * 1440 - 1), st.sampled_from(["m1", "m2"]),
                             st.sampled_from(["k1", "k2", None]), st.integers(0, 5000), st.integers(0, 2000),
                             st.integers(0, 10**7)), max_size=60)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=STREAMS)
async def test_each_tenant_sees_exactly_the_sum_of_its_own_events(gateway: Gateway,
                                                                  stream: list[tuple[Any, ...]]) -> None:
    first = date(2020, 1, 1) + timedelta(days=7 * next(_windows))  # each example in its own week
    start = datetime.combine(first, datetime.min.time(), UTC)
    events = [_event(n, tenant, start + timedelta(minutes=minute), model, key, prompt, completion, micros)
              for n, (tenant, minute, model, key, prompt, completion, micros) in enumerate(stream)]
    await gateway.store.insert_batch(events)
    last = first + timedelta(days=3)
    for tenant in TENANTS:
        # the caller asks for everything it can name; it gets its own tenant's usage, nothing else
        status, body = await gateway.get(tenant, f"/v1/usage?start={first}&end={last}&group_by=day,model,key")
        assert status == 200 and body["tenant"] == tenant
        got = {(r["day"], r["model"], r["key"]): (r["requests"], r["prompt_tokens"], r["completion_tokens"],
                                                  Decimal(r["price_usd"])) for r in body["data"]}
        own = [e for e in events if e.tenant == tenant]
        assert got == _expected(own)
        assert body["totals"]["requests"] == len(own)
        assert Decimal(body["totals"]["price_usd"]) == sum((e.price for e in own), Decimal(0))
        assert "hardware_cost_usd" not in body["totals"]  # the platform's costs are not the tenant's business


async def test_no_parameter_can_name_another_tenant(gateway: Gateway) -> None:
    for query in ("tenant=globex", "tenants=globex", "group_by=tenant", "group_by=replica", "tier=pro"):
        status, body = await gateway.get("acme", f"/v1/usage?{query}")
        assert status == 400, query
        assert body["error"]["type"] == "invalid_request_error"


async def test_bad_ranges_and_formats_are_400(gateway: Gateway) -> None:
    for query in ("start=yesterday", "start=2026-05-02&end=2026-05-01", "start=2020-01-01&end=2026-01-01",
                  "format=xml", "group_by=week", "model=" + "x" * 300):
        status, body = await gateway.get("acme", f"/v1/usage?{query}")
        assert status == 400 and "error" in body, query


async def test_csv_and_the_admin_view(gateway: Gateway) -> None:
    at = datetime(2026, 5, 3, 12, tzinfo=UTC)
    await gateway.store.insert_batch([_event(1, "acme", at, "m1", "k1", 100, 50, 2_000_000),
                                      _event(2, "globex", at, "m1", None, 10, 5, 1_000_000),
                                      _event(3, "acme", at + timedelta(hours=1), "=cmd", "k1", 1, 1, 3)])
    status, text = await gateway.get("acme", "/v1/usage?start=2026-05-01&end=2026-05-31&format=csv&group_by=model")
    assert status == 200
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["model", "requests", "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
                       "price_usd"]
    assert rows[1:] == [["'=cmd", "1", "1", "1", "0", "2", "0.000003"], ["m1", "1", "100", "50", "0", "150", "2"]]
    status, body = await gateway.get("admin", "/admin/usage?start=2026-05-01&end=2026-05-31&group_by=tenant,tier,replica")
    assert status == 200
    assert [(r["tenant"], r["requests"], r["price_usd"], r["hardware_cost_usd"], r["margin_usd"]) for r in body["data"]] \
        == [("acme", 2, "2.000003", "0.666667", "1.333336"), ("globex", 1, "1", "0.333333", "0.666667")]
    status, body = await gateway.get("admin", "/admin/usage?start=2026-05-03&end=2026-05-03&tenant=globex&group_by=hour")
    assert status == 200 and [r["hour"] for r in body["data"]] == ["2026-05-03T12:00:00Z"]
    for who in ("acme", "acme-admin"):  # tenant admins are not platform admins
        status, body = await gateway.get(who, "/admin/usage")
        assert status == 403 and body["error"]["code"] == "insufficient_role"


async def test_forecasts_for_the_tenant_and_the_admin(gateway: Gateway) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await gateway.store.insert_batch([_event(d, t, today - timedelta(days=d), "m1", "k1", 1000 + d, 100, 5_000)
                                      for d in range(30) for t in ("acme", "globex")])
    status, body = await gateway.get("acme", "/v1/usage/forecast")
    assert status == 200 and body["tenant"] == "acme" and body["month"] == today.strftime("%Y-%m")
    assert body["tokens"]["low"] <= body["tokens"]["expected"] <= body["tokens"]["high"]
    assert body["tokens"]["used"] == sum(1100 + d for d in range(30) if (today - timedelta(days=d)).month == today.month)
    assert body["tokens"]["backtest"]["holdout_days"] == 14
    status, body = await gateway.get("acme", "/v1/usage/forecast?tenant=globex")
    assert status == 400
    status, body = await gateway.get("admin", "/admin/usage/forecast")
    assert status == 200 and [f["tenant"] for f in body["data"]] == ["acme", "globex"]
