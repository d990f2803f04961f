"""Payments through the official ``stripe`` SDK against localstripe, through a real gateway: a card
that declines (4000000000000341) → retries → dunning → the tenant suspended → the card changed →
paid → the tenant reinstated; signed webhooks delivered by localstripe verified, kept once, and a
late ``payment_failed`` after ``paid`` changing nothing; refunds bounded; reconciliation clean.

localstripe's gaps, stated here as the adapter's contract: it cannot create one-off invoices
(``POST /v1/invoices`` without a subscription answers 404) nor finalize (no ``/finalize``), so
the adapter collects each attempt with a PaymentIntent carrying the invoice's lines; against
Stripe itself the adapter mirrors an invoice item per line, creates, finalizes and pays the invoice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import SERVICES, create_app
from inferlab.auth import LOCAL_OPERATOR, Scopes
from inferlab.auth.model import Tenant
from inferlab.billing.build import BillingServices
from inferlab.billing.stripe_provider import PI_PREFIX, StripeProvider
from inferlab.billing.webhooks import sign
from inferlab.config import Settings
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.store.usage import SqlUsageStore
from inferlab.testing.localstripe import LocalStripe

Client = TestClient[Any, Any]
DECLINES = "4000000000000341"  # attaches, then every charge is declined
OLD, NEW = "whsec_old_secret", "whsec_new_secret"


@dataclass
class Gateway:
    client: Client
    billing: BillingServices
    usage: SqlUsageStore
    tokens: dict[str, str]
    tenants: Any
    notices: list[dict[str, Any]]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        answer = await self.client.request(method, path, json=body,
                                           headers={"Authorization": f"Bearer {self.tokens[who]}"})
        return answer.status, (await answer.json() if answer.content_type == "application/json" else await answer.text())


@pytest.fixture
async def notices() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver for dunning notices (``billing.dunning.notice_url``)."""
    received: list[dict[str, Any]] = []

    async def notice(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/notices", notice)
    async with TestServer(receiver, host="127.0.0.1") as server:
        yield str(server.make_url("/notices")), received


@pytest.fixture
async def gateway(stripe_double: LocalStripe, tmp_path: Path,
                  notices: tuple[str, list[dict[str, Any]]]) -> AsyncIterator[Gateway]:
    app = await create_app(Settings(
        data_dir=tmp_path, features={"auth": True}, auth={"pepper": "p" * 32, "bootstrap": False},
        pricing={"models": {"m": {"input_per_million": "2", "output_per_million": "8"}}},
        billing={"enabled": True, "jobs": False, "provider": "stripe", "grace_hours": 72,
                 "plans": {"payg": [{}], "pro": [{"flat_fee": "20"}]},
                 "dunning": {"retry_hours": [24, 72, 120], "suspend_after_attempts": 3, "grace_days": 7,
                             "notice_url": notices[0]},
                 "stripe": {"api_key": "sk_test_localstripe", "api_base": stripe_double.url, "max_network_retries": 0,
                            "webhook_secrets": [OLD, NEW]}}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        services = client.app[SERVICES]
        stack = services.admin.auth
        tokens = {}
        tenant = f"acme-{uuid.uuid4().hex[:6]}"
        for name in (tenant, "globex"):
            await stack.store.add_tenant(Tenant(name, name, datetime.now(UTC)))
        for who, owner, role in [("acme", tenant, "member"), ("globex", "globex", "member"),
                                 ("admin", "default", "platform-admin")]:
            user = await stack.admin.create_user(LOCAL_OPERATOR, f"u-{who}", role, owner)  # type: ignore[arg-type]
            created = await stack.admin.create_key(LOCAL_OPERATOR, name="k", user_id=user.id,
                                                   scopes=Scopes(frozenset({"inference", "admin"})))
            tokens[who] = created.token
        tokens["tenant"] = tenant
        stripe_double.register_webhook(f"gw-{tenant}", str(client.make_url("/webhooks/stripe")), NEW,
                                       ["payment_intent.succeeded", "payment_intent.payment_failed", "invoice.paid",
                                        "invoice.payment_failed"])
        yield Gateway(client, services.billing, SqlUsageStore(stack.database), tokens, services.admin.tenant_admin,
                      notices[1])


def _event(tenant: str, at: datetime, prompt: int, completion: int) -> UsageEvent:
    return UsageEvent(id=f"ev-{uuid.uuid4().hex}", time=at, tenant=tenant, user=None, key=None, tier="free",
                      route="/v1/chat/completions", model="m", model_version=None, replica="r0", hardware=None,
                      prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0,
                      token_source=TokenSource.ENGINE, queue_ms=None, ttft_ms=None, duration_ms=10.0,
                      status=EventStatus.SUCCESS, http_status=200, price=Decimal(0), hardware_cost=Decimal(0))


def _card(stripe_double: LocalStripe, number: str) -> str:
    import stripe

    client = stripe.StripeClient("sk_test_localstripe", base_addresses={"api": stripe_double.url})
    return str(client.v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}).id)


async def _webhooks(gw: Gateway, want: dict[str, int], timeout_s: float = 15.0) -> list[Any]:
    """The stored events, once localstripe delivered at least ``want`` of each type (it waits 1 s
    before each delivery)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await gw.billing.engine.store.pending_webhooks(100)
        kinds = [e.type for e in found]
        if all(kinds.count(k) >= n for k, n in want.items()) or time.monotonic() > deadline:
            return list(found)
        await asyncio.sleep(0.1)


async def test_a_declining_card_is_dunned_suspended_and_reinstated_once_paid(
        gateway: Gateway, stripe_double: LocalStripe) -> None:
    gw, tenant = gateway, gateway.tokens["tenant"]
    engine, collector = gw.billing.engine, gw.billing.collector
    now = datetime.now(UTC)
    await gw.usage.prepare(now)
    await gw.usage.insert_batch([_event(tenant, now - timedelta(seconds=5), 1_000_000, 250_000)])
    status, account = await gw.call("admin", "PATCH", f"/admin/billing/accounts/{tenant}", {"plan": "pro"})
    assert status == 200 and account["plan"] == "pro"
    status, _ = await gw.call("admin", "POST", f"/admin/billing/accounts/{tenant}/payment-method",
                              {"payment_method": _card(stripe_double, DECLINES)})
    assert status == 200

    period = await engine.period_of(tenant, now)
    t0 = period.end + timedelta(hours=73)
    [invoice] = [i for i in await engine.close_due(t0, tenants=[tenant]) if i.period_start == period.start]
    assert invoice.state == "finalized" and invoice.total == Decimal("24.00")  # 20 + 2.00 input + 2.00 output

    first = await collector.run_once(t0)
    assert (first.attempted, first.failed) == (1, 1)
    invoice = await engine.get(invoice.id)
    assert invoice.provider_ref == PI_PREFIX + (await engine.account(tenant)).provider_customer  # type: ignore[operator]
    assert invoice.dunning == "retrying" and invoice.attempts == 1
    assert [(p.attempt, p.state, p.error) for p in await engine.store.payments(invoice.id)] == [
        (1, "failed", "card_declined")]
    await collector.run_once(t0 + timedelta(hours=1))  # not due yet
    assert (await engine.get(invoice.id)).attempts == 1
    await collector.run_once(t0 + timedelta(hours=24))
    third = await collector.run_once(t0 + timedelta(hours=72))
    assert third.suspended == 0  # three attempts, but the grace window is still open
    suspended = await collector.run_once(t0 + timedelta(days=8))
    assert suspended.suspended == 1
    assert (await engine.get(invoice.id)).dunning == "suspended"
    assert (await gw.tenants.get(LOCAL_OPERATOR, tenant)).status == "suspended"
    status, refused = await gw.call("acme", "GET", "/v1/billing/invoices")
    assert status == 403 and refused["error"]["code"] == "tenant_suspended"

    status, _ = await gw.call("admin", "POST", f"/admin/billing/accounts/{tenant}/payment-method",
                              {"payment_method": _card(stripe_double, "4242424242424242")})
    assert status == 200
    paid = await collector.run_once(t0 + timedelta(days=8, hours=1))
    assert paid.paid == 1
    invoice = await engine.get(invoice.id)
    assert invoice.state == "paid" and invoice.amount_paid == Decimal("24.00") and invoice.dunning == "resolved"
    assert (await gw.tenants.get(LOCAL_OPERATOR, tenant)).status == "active"
    actions = [e["action"] for e in await engine.store.log_entries(tenant, 100)]
    assert {"dunning.start", "tenant.suspend", "tenant.reinstate", "invoice.paid"} <= set(actions)
    assert [n["type"] for n in gw.notices] == ["billing.payment_failed"] * 4 + ["billing.suspended",
                                                                            "billing.reinstated"]
    assert {n["tenant"] for n in gw.notices} == {tenant} and gw.notices[0]["amount_due"] == "24.00"

    # localstripe's signed webhooks (the newer of two active secrets): the failures arrive after paid
    events = await _webhooks(gw, {"payment_intent.payment_failed": 3, "payment_intent.succeeded": 1})
    kinds = sorted(e.type for e in events)
    failures = [p for p in await engine.store.payments(invoice.id) if p.state == "failed"]
    assert len(failures) == 4  # the first attempt and three retries (at 24, 72 and 120 h), all declined
    assert kinds.count("payment_intent.payment_failed") == 4 and "payment_intent.succeeded" in kinds
    assert await gw.billing.inbox.process_pending() == len(events)
    assert (await engine.get(invoice.id)).state == "paid"
    assert (await gw.tenants.get(LOCAL_OPERATOR, tenant)).status == "active"  # no re-suspension
    assert await engine.store.pending_webhooks(10) == []

    status, report = await gw.call("admin", "GET", f"/admin/billing/reconciliation?tenant={tenant}")
    assert status == 200 and report["differences"] == []
    await engine.store.update(invoice.id, ["paid"], datetime.now(UTC), amount_paid=Decimal("23.99"))  # drift
    status, report = await gw.call("admin", "GET", f"/admin/billing/reconciliation?tenant={tenant}")
    assert [(d["field"], d["ours"], d["theirs"]) for d in report["differences"]] == [("amount_paid", "2399", "2400")]
    await engine.store.update(invoice.id, ["paid"], datetime.now(UTC), amount_paid=Decimal("24.00"))
    status, refunded = await gw.call("admin", "POST", f"/admin/billing/invoices/{invoice.id}/refunds",
                                     {"amount": "4.00", "reason": "goodwill"})
    assert status == 200 and refunded["amount_refunded"] == "4.00"
    [note] = await engine.store.credit_notes(invoice.id)
    assert note.kind == "refund" and note.provider_ref is not None and note.provider_ref.startswith("re_")
    status, error = await gw.call("admin", "POST", f"/admin/billing/invoices/{invoice.id}/refunds",
                                  {"amount": "20.01"})
    assert status == 400 and error["error"]["code"] == "exceeds_paid"

    # the customer API: own invoices only
    status, mine = await gw.call("acme", "GET", "/v1/billing/invoices")
    assert status == 200 and invoice.id in [i["id"] for i in mine["data"]]  # and the next period's draft
    assert {i["tenant"] for i in mine["data"]} == {tenant}
    status, html = await gw.call("acme", "GET", f"/v1/billing/invoices/{invoice.id}/html")
    assert status == 200 and "24.00" in html and "<script" not in html
    for path in (f"/v1/billing/invoices/{invoice.id}", f"/v1/billing/invoices/{invoice.id}/html"):
        status, body = await gw.call("globex", "GET", path)
        assert status == 404 and body["error"]["code"] is not None
    status, theirs = await gw.call("globex", "GET", "/v1/billing/invoices")
    assert status == 200 and theirs["data"] == []


async def test_webhooks_are_verified_on_the_raw_body_and_kept_once(gateway: Gateway) -> None:
    gw = gateway
    body = b'{"id": "evt_test_1", "type": "invoice.paid", "data": {"object": {"metadata": {}}}}'
    stamp = int(time.time())

    async def post(payload: bytes, signature: str | None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature else {})
        answer = await gw.client.post("/webhooks/stripe", data=payload, headers=headers)
        return answer.status, await answer.json()

    assert (await post(body, None))[0] == 400
    assert (await post(body, sign(body, "whsec_wrong", stamp)))[0] == 400
    assert (await post(body + b" ", sign(body, OLD, stamp)))[0] == 400  # the raw body is what is signed
    assert (await post(body, sign(body, OLD, stamp - 3600)))[0] == 400  # outside the tolerance
    results = await asyncio.gather(*(post(body, sign(body, secret, stamp)) for secret in (OLD, NEW, OLD)))
    assert sorted(r[1]["duplicate"] for r in results) == [False, True, True]
    assert all(r[0] == 200 for r in results)
    assert [e.id for e in await gw.billing.engine.store.pending_webhooks(10)] == ["evt_test_1"]
    assert await gw.billing.inbox.process_pending() == 1  # not ours: recorded as such, once


async def test_localstripe_gaps_the_adapter_handles(stripe_double: LocalStripe, gateway: Gateway) -> None:
    """The adapter's contract against localstripe: no one-off invoices, so payment-intent mode."""
    provider = gateway.billing.provider
    assert isinstance(provider, StripeProvider)
    engine = gateway.billing.engine
    tenant = gateway.tokens["tenant"]
    now = datetime.now(UTC)
    await gateway.usage.prepare(now)
    await gateway.usage.insert_batch([_event(tenant, now - timedelta(seconds=5), 500_000, 0)])
    period = await engine.period_of(tenant, now)
    invoice = await engine.finalize(await engine.draft(tenant, period, now), now, force=True)
    customer = await provider.ensure_customer(await engine.account(tenant))
    assert customer is not None and customer.startswith("cus_")
    ref = await provider.push_invoice(invoice, customer)
    assert provider.mode == "payment_intent" and ref == PI_PREFIX + customer
    assert provider.finalize_supported is None  # never reached: no invoice to finalize
    import stripe

    client = stripe.StripeClient("sk_test_localstripe", base_addresses={"api": stripe_double.url})
    with pytest.raises(stripe.StripeError) as missing:
        client.v1.invoices.finalize_invoice("in_anything")
    assert missing.value.http_status == 404  # no such endpoint: the adapter treats a 404 there as "pay finalizes"
    item = client.v1.invoice_items.create(params={"customer": customer, "amount": 100, "currency": "usd"})
    with pytest.raises(stripe.StripeError) as refused:
        client.v1.invoices.create(params={"customer": customer})
    assert refused.value.http_status == 404  # "No upcoming invoices for customer": no one-off invoices
    client.v1.invoice_items.delete(item.id)
    leftover = client.v1.invoice_items.list(params={"customer": customer})
    assert [i for i in leftover.data if (i.metadata or {}).get("inferlab_invoice") == invoice.id] == []
