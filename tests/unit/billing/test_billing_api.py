"""The billing API through a real gateway (invoices only: no payment provider): a tenant sees its
own invoices and nothing else — generated BOLA cases, where another tenant's invoice answers
exactly as a missing one — admins change states, bad input is a 400, and the margins report
joins the rated revenue with metering's hardware cost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.billing.build import BillingServices
from inferlab.billing.periods import Period
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store.models import UsageHourlyRow
from inferlab.store.usage import SqlUsageStore
from inferlab.testing import EngineSimulator

Client = TestClient[Any, Any]
TENANTS = ("acme", "globex", "initech")
MONTHS = [Period(datetime(2026, m, 1, tzinfo=UTC), datetime(2026, m + 1, 1, tzinfo=UTC)) for m in range(1, 7)]


@dataclass
class Gateway:
    client: Client
    billing: BillingServices
    usage: SqlUsageStore
    tokens: dict[str, str]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        answer = await self.client.request(method, path, json=body,
                                           headers={"Authorization": f"Bearer {self.tokens[who]}"})
        if answer.content_type == "application/json":
            return answer.status, await answer.json()
        if answer.content_type == "application/pdf":
            return answer.status, await answer.read()
        return answer.status, await answer.text()


@pytest.fixture
async def gateway(sim: EngineSimulator, tmp_path: Path) -> AsyncIterator[Gateway]:
    assert sim.base_url is not None
    app = await create_app(Settings(
        data_dir=tmp_path, features={"auth": True}, auth={"pepper": "p" * 32, "bootstrap": False},
        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}],
        pricing={"models": {"m1": {"input_per_million": "1", "output_per_million": "3"}}},
        billing={"enabled": True, "jobs": False, "plans": {"payg": [{}], "pro": [{"flat_fee": "10"}]}}))
    async with TestClient(TestServer(app)) as client:
        stack = client.app[SERVICES].admin.auth
        tokens = {}
        for tenant in TENANTS:
            await stack.store.add_tenant(Tenant(tenant, tenant, datetime.now(UTC)))
        for who, tenant, role in [*((t, t, "member") for t in TENANTS), ("admin", "default", "platform-admin")]:
            user = await stack.admin.create_user(LOCAL_OPERATOR, f"u-{who}", role, tenant)  # type: ignore[arg-type]
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                                   scopes=Scopes(frozenset({"inference", "admin"})))
            tokens[who] = created.token
        yield Gateway(client, client.app[SERVICES].billing, SqlUsageStore(stack.database), tokens)


def _event(tenant: str, at: datetime, prompt: int, completion: int, model: str = "m1",
           cost: str = "0.001") -> UsageEvent:
    return UsageEvent(id=f"ev-{uuid.uuid4().hex}", time=at, tenant=tenant, user=None, key=None, tier="free",
                      route="/v1/chat/completions", model=model, model_version=None, replica="r0", hardware=None,
                      prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0,
                      token_source=TokenSource.ENGINE, queue_ms=None, ttft_ms=None, duration_ms=10.0,
                      status=EventStatus.SUCCESS, http_status=200, price=Decimal("0.01"), hardware_cost=Decimal(cost))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(owner=st.sampled_from(TENANTS), caller=st.sampled_from(TENANTS), month=st.sampled_from(MONTHS),
       suffix=st.sampled_from(["", "/html", "/pdf"]), finalize=st.booleans())
async def test_a_tenant_sees_only_its_own_invoices(gateway: Gateway, owner: str, caller: str, month: Period,
                                                   suffix: str, finalize: bool) -> None:
    engine = gateway.billing.engine
    invoice = await engine.draft(owner, month, month.end)
    if finalize:
        invoice = await engine.finalize(invoice, month.end, force=True)
    status, body = await gateway.call(caller, "GET", f"/v1/billing/invoices/{invoice.id}{suffix}")
    missing_status, missing = await gateway.call(caller, "GET", f"/v1/billing/invoices/{invoice.id}x{suffix}")
    assert missing_status == 404
    if caller == owner:
        assert status == 200
        assert (body["id"] == invoice.id) if not suffix else suffix == "/pdf" or invoice.id in body
    else:
        assert (status, body) == (missing_status, missing)  # indistinguishable from an invoice that does not exist
    status, listed = await gateway.call(caller, "GET", "/v1/billing/invoices?limit=1000")
    assert status == 200 and {i["tenant"] for i in listed["data"]} <= {caller}
    status, _ = await gateway.call(caller, "GET", f"/admin/billing/invoices/{invoice.id}")
    assert status == 403  # members are no admins


async def test_admin_flow_and_bad_input(gateway: Gateway) -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    await gateway.usage.prepare(at)
    await gateway.usage.insert_batch([_event("acme", at, 2_000_000, 1_000_000),
                                      _event("acme", at, 10, 10, model="<script>x</script>", cost="0")])
    status, account = await gateway.call("admin", "PATCH", "/admin/billing/accounts/acme",
                                         {"plan": "pro", "timezone": "Europe/Berlin"})
    assert status == 200 and account["timezone"] == "Europe/Berlin"
    status, draft = await gateway.call("admin", "POST", "/admin/billing/drafts",
                                       {"tenant": "acme", "at": "2026-03-15T00:00:00Z"})
    assert status == 200 and draft["status"] == "draft" and draft["total"] == "15.00"
    assert draft["period_start"] == "2026-02-28T23:00:00+00:00"  # midnight in Berlin
    status, _ = await gateway.call("admin", "POST", "/admin/billing/credits",
                                        {"tenant": "acme", "amount": "2.50", "reason": "sorry"})
    assert status == 201
    path = f"/admin/billing/invoices/{draft['id']}"
    status, done = await gateway.call("admin", "POST", path + "/finalize")
    assert status == 200 and done["status"] == "finalized" and done["credits_applied"] == "2.50"
    assert done["total"] == "12.50" and done["subtotal"] == "15.00"
    status, again = await gateway.call("admin", "POST", path + "/finalize")
    assert status == 200 and again == done  # finalized invoices never change
    status, html = await gateway.call("acme", "GET", f"/v1/billing/invoices/{draft['id']}/html")
    assert status == 200 and "<script>x" not in html and "&lt;script&gt;" in html
    answer = await gateway.client.get(f"/v1/billing/invoices/{draft['id']}/pdf",
                                      headers={"Authorization": f"Bearer {gateway.tokens['acme']}"})
    pdf = await answer.read()
    assert answer.status == 200 and answer.content_type == "application/pdf" and pdf.startswith(b"%PDF-")
    assert b"Invoice " + draft["id"].encode() in pdf and b"12.50" in pdf and b"(15.00)" in pdf.replace(b" ", b"")
    status, _ = await gateway.call("globex", "GET", f"/v1/billing/invoices/{draft['id']}/pdf")
    assert status == 404
    status, error = await gateway.call("admin", "POST", path + "/refunds", {"amount": "1.00"})
    assert status == 400 and error["error"]["code"] == "invalid_state"  # not paid yet
    status, paid = await gateway.call("admin", "POST", path + "/paid")
    assert status == 200 and paid["status"] == "paid" and paid["amount_paid"] == "12.50"
    status, error = await gateway.call("admin", "POST", path + "/void")
    assert status == 400 and error["error"]["code"] == "invalid_state"
    async with gateway.usage.database.sessions.begin() as session:  # what the hardware cost job adds
        await session.execute(update(UsageHourlyRow).where(UsageHourlyRow.tenant == "acme", UsageHourlyRow.model == "m1")
                              .values(hardware_cost=Decimal("0.001")))
    status, margins = await gateway.call("admin", "GET", "/admin/billing/margins?tenant=acme&at=2026-03-15T00:00:00Z")
    rows = {r["model"]: r for r in margins["data"]}
    assert status == 200 and rows["m1"]["revenue_usd"] == "5.00" and rows["m1"]["hardware_cost_usd"] == "0.001"
    assert rows["m1"]["margin_usd"] == "4.999" and rows["*"]["revenue_usd"] == "10.00"  # the plan's fee
    for method, where, body in [
        ("POST", "/admin/billing/credits", {"tenant": "acme", "amount": "-1"}),
        ("POST", "/admin/billing/credits", {"tenant": "acme", "amount": "1.001"}),
        ("PATCH", "/admin/billing/accounts/acme", {"plan": "nope"}),
        ("PATCH", "/admin/billing/accounts/acme", {"timezone": "Mars/Olympus"}),
        ("POST", "/admin/billing/drafts", {"tenant": "acme", "at": "yesterday"}),
        ("POST", path + "/refunds", {"amount": "100.00"}),
        ("POST", "/admin/billing/plans/Bad Name/versions", {"flat_fee": "1"}),
        ("POST", "/admin/billing/plans/pro/versions", {"flat_fee": "-1"}),
        ("GET", "/admin/billing/invoices?status=weird", None),
        ("PATCH", "/admin/billing/accounts/acme", {"timezone": "UTC"}),  # it has invoices in Berlin's periods
    ]:
        status, error = await gateway.call("admin", method, where, body)
        assert status in (400, 404) and "error" in error, (where, body, status, error)
    for method, where, body in [("PATCH", "/admin/billing/accounts/nobody", {"plan": "pro"}),
                                ("GET", "/admin/billing/accounts/nobody", None),
                                ("POST", "/admin/billing/credits", {"tenant": "nobody", "amount": "1.00"}),
                                ("POST", "/admin/billing/drafts", {"tenant": "nobody"}),
                                ("POST", "/admin/billing/invoices/inv_nobody_2026010100/finalize", None)]:
        status, error = await gateway.call("admin", method, where, body)
        assert status == 404 and error["error"]["type"] == "not_found_error", (where, error)
    status, _ = await gateway.call("admin", "POST", "/admin/billing/plans/pro/versions",
                                         {"effective": "2026-03-31T22:00:00Z", "flat_fee": "12"})
    assert status == 201
    status, plans = await gateway.call("admin", "GET", "/admin/billing/plans")
    pro = next(p for p in plans["data"] if p["name"] == "pro")
    assert [v["flat_fee"] for v in pro["versions"]] == ["10.00", "12.00"]
    april = await gateway.billing.engine.draft("acme", await gateway.billing.engine.period_of(
        "acme", datetime(2026, 4, 15, tzinfo=UTC)), datetime(2026, 4, 15, tzinfo=UTC))
    assert april.subtotal == Decimal(12)
    status, log = await gateway.call("admin", "GET", "/admin/billing/log?tenant=acme")
    assert {"invoice.finalize", "invoice.paid", "credit.add"} <= {e["action"] for e in log["data"]}
    assert datetime.fromisoformat(done["finalized_at"]) - datetime.now(UTC) < timedelta(minutes=1)
