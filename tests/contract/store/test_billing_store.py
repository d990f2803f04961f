"""Billing over the real store (SQLite and PostgreSQL): drafts rated from the rollups equal the raw
events, late usage lands on the draft within grace and as an adjustment after it, finalized
invoices never change, credits are consumed once and refunds never pass what was paid — also
when two gateways race."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferlab.billing.engine import BillingEngine
from inferlab.billing.periods import Period, period_of
from inferlab.billing.plans import PlanBook
from inferlab.billing.protocol import Account, WebhookEvent
from inferlab.billing.rating import Tokens, rate, segments
from inferlab.config.billing import BillingSettings
from inferlab.config.pricing import PricingSettings
from inferlab.errors import InvalidRequest, NotFound
from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.pricebook import PriceBook
from inferlab.store import Database
from inferlab.store.billing import SqlBillingStore
from inferlab.store.billing_usage import SqlBillingUsage
from inferlab.store.usage import SqlUsageStore

JAN = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
BOOK = PriceBook(PricingSettings.model_validate({
    "models": {"m": {"input_per_million": "1.5", "output_per_million": "6"}},
    "versions": [{"effective": "2026-01-10T10:30:00Z", "models": {"m": {"input_per_million": "2"}}}]}))
SETTINGS = BillingSettings.model_validate({"grace_hours": 72, "plans": {"payg": [{}], "pro": [{"flat_fee": "10"}]}})
_ids = itertools.count()


def event(tenant: str, at: datetime, prompt: int = 100_000, completion: int = 50_000, *, model: str = "m",
          event_id: str | None = None) -> UsageEvent:
    return UsageEvent(
        id=event_id or f"b{next(_ids):07d}-{uuid.uuid4().hex[:8]}", time=at, tenant=tenant, user="u", key="k",
        tier="pro", route="/v1/chat/completions", model=model, model_version=None, replica="r0", hardware=None,
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0, token_source=TokenSource.ENGINE,
        queue_ms=0.0, ttft_ms=1.0, duration_ms=10.0, status=EventStatus.SUCCESS, http_status=200,
        price=Decimal("0.01"), hardware_cost=Decimal("0.002"), request_id=None)


@pytest.fixture
async def ledger(database: Database) -> SqlUsageStore:
    store = SqlUsageStore(database)
    for month in (12, 1, 2, 3):
        await store.prepare(datetime(2026 if month < 12 else 2025, month, 15, tzinfo=UTC))
    return store


@pytest.fixture
def engine(database: Database) -> BillingEngine:
    return BillingEngine(SETTINGS, SqlBillingStore(database), SqlBillingUsage(database), BOOK)


async def test_a_draft_rated_from_rollups_equals_the_raw_events(engine: BillingEngine, ledger: SqlUsageStore) -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # half-hour boundaries: the edges come from the raw events
    await engine.set_account("kol", timezone="Asia/Kolkata")
    period = period_of(datetime(2026, 1, 15, tzinfo=UTC), kolkata)
    moments = [period.start, period.start + timedelta(minutes=10), period.start - timedelta(minutes=1),
               datetime(2026, 1, 10, 10, 29, tzinfo=UTC), datetime(2026, 1, 10, 10, 30, tzinfo=UTC),
               datetime(2026, 1, 20, 3, tzinfo=UTC), period.end - timedelta(microseconds=1), period.end]
    events = [event("kol", at, 1000 * (i + 1), 10 * i) for i, at in enumerate(moments)]
    await ledger.insert_batch(events)
    invoice = await engine.draft("kol", period, datetime(2026, 2, 1, tzinfo=UTC))
    segs = segments(period, "payg", PlanBook(SETTINGS.plans), BOOK)
    usage: list[dict[tuple[str, str], Tokens]] = [{} for _ in segs]
    for e in events:
        for i, seg in enumerate(segs):
            if seg.start <= e.time < seg.end:
                usage[i].setdefault((e.model, e.tier), Tokens()).add(e.prompt_tokens, e.completion_tokens, 0)
    assert list(invoice.lines) == rate(period, segs, usage, BOOK)
    assert sum(x.quantity for x in invoice.lines if x.direction == "input") == 1000 * (1 + 2 + 4 + 5 + 6 + 7)
    assert len([x for x in invoice.lines if x.direction == "input"]) == 2  # the price change split the line


async def test_late_usage_goes_on_the_draft_then_on_the_next_invoice(engine: BillingEngine,
                                                                     ledger: SqlUsageStore) -> None:
    await ledger.insert_batch([event("acme", datetime(2026, 1, 5, tzinfo=UTC))])
    first = await engine.draft("acme", JAN, JAN.end)
    late = event("acme", datetime(2026, 1, 31, 23, tzinfo=UTC))
    await ledger.insert_batch([late])
    within = JAN.end + timedelta(hours=71)
    assert await engine.close_due(within, tenants=["acme"]) == []  # the grace window is open
    redrafted = await engine.draft("acme", JAN, within)
    assert redrafted.subtotal > first.subtotal and redrafted.state == "draft"
    [finalized] = [i for i in await engine.close_due(JAN.end + timedelta(hours=73), tenants=["acme"])
                   if i.period_start == JAN.start]
    assert finalized.state == "finalized" and finalized.lines == redrafted.lines

    later = event("acme", datetime(2026, 1, 20, tzinfo=UTC), 1_000_000, 0)  # past grace: 2.00 at the new price
    await ledger.insert_batch([later, later])  # re-shipped: stored once
    assert (await engine.get(finalized.id)).lines == finalized.lines  # finalized invoices never change
    feb = Period(JAN.end, datetime(2026, 3, 1, tzinfo=UTC))
    draft = await engine.draft("acme", feb, feb.start + timedelta(days=5))
    [adjustment] = [x for x in draft.lines if x.kind == "adjustment"]
    assert adjustment.amount == Decimal("2.00") and adjustment.ref == finalized.id
    await engine.finalize(draft, feb.end + timedelta(days=4))
    march = await engine.draft("acme", Period(feb.end, datetime(2026, 4, 1, tzinfo=UTC)), feb.end)
    assert not [x for x in march.lines if x.kind == "adjustment"]  # adjusted once


async def test_credits_are_consumed_once_when_two_gateways_finalize(database: Database, ledger: SqlUsageStore) -> None:
    engines = [BillingEngine(SETTINGS, SqlBillingStore(database), SqlBillingUsage(database), BOOK) for _ in range(2)]
    await engines[0].set_account("acme", plan="pro")
    await ledger.insert_batch([event("acme", datetime(2026, 1, 5, tzinfo=UTC))])
    await engines[0].add_credit("acme", Decimal("12.00"), "goodwill")
    draft = await engines[0].draft("acme", JAN, JAN.end)
    now = JAN.end + timedelta(days=4)
    a, b = await asyncio.gather(engines[0].finalize(draft, now), engines[1].finalize(draft, now))
    assert a.id == b.id and a.credits_applied == b.credits_applied
    assert a.credits_applied == a.subtotal == Decimal("10.45")  # the plan's fee and the usage; all of it credited
    assert a.state == "paid" and a.total == 0
    [credit] = await engines[0].store.credits("acme")
    assert credit.remaining == Decimal("12.00") - a.credits_applied
    feb = await engines[0].draft("acme", Period(JAN.end, datetime(2026, 3, 1, tzinfo=UTC)), now)
    done = await engines[0].finalize(feb, datetime(2026, 3, 5, tzinfo=UTC))
    assert done.credits_applied == Decimal("1.55") and done.total == Decimal("8.45") and done.state == "finalized"


async def test_refunds_and_credit_notes_never_exceed_what_was_paid(engine: BillingEngine,
                                                                   ledger: SqlUsageStore) -> None:
    await engine.set_account("acme", plan="pro")
    invoice = await engine.finalize(await engine.draft("acme", JAN, JAN.end), JAN.end, force=True)
    with pytest.raises(InvalidRequest):
        await engine.credit_note(invoice, Decimal(1), kind="refund", reason="not paid yet")
    paid = await engine.mark_paid(invoice)
    assert paid.amount_paid == Decimal(10) and await engine.mark_paid(paid) == paid
    results = await asyncio.gather(*(engine.credit_note(paid, Decimal(6), kind=k, reason="r")
                                     for k in ("refund", "credit")), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["InvalidRequest", "Invoice"]
    after = await engine.get(paid.id)
    assert after.amount_refunded == Decimal(6)
    await engine.credit_note(after, Decimal(4), kind="refund", reason="rest")
    with pytest.raises(InvalidRequest):
        await engine.credit_note(after, Decimal("0.01"), kind="refund", reason="too much")
    with pytest.raises(InvalidRequest):
        await engine.void(after)  # paid is final


async def test_invoices_of_another_tenant_are_not_found(engine: BillingEngine) -> None:
    invoice = await engine.draft("acme", JAN, JAN.end)
    assert (await engine.get(invoice.id, tenant="acme")).id == invoice.id
    with pytest.raises(NotFound):
        await engine.get(invoice.id, tenant="other")
    with pytest.raises(NotFound):
        await engine.get("inv_nope", tenant="acme")


async def test_webhook_events_are_kept_once(database: Database) -> None:
    store = SqlBillingStore(database)
    now = datetime.now(UTC)
    found = await asyncio.gather(*(store.add_webhook(WebhookEvent("evt_1", "invoice.paid", {"n": i}, now))
                                   for i in range(4)))
    assert sorted(found) == [False, False, False, True]
    assert [e.id for e in await store.pending_webhooks(10)] == ["evt_1"]
    assert await store.webhook_done("evt_1", "ok", now) and not await store.webhook_done("evt_1", "ok", now)
    assert await store.pending_webhooks(10) == []


EVENTS = st.lists(st.tuples(st.integers(0, 31 * 24 * 60 - 1), st.integers(0, 50_000), st.integers(0, 20_000)),
                  min_size=1, max_size=25)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=EVENTS, copies=st.integers(1, 3), cut=st.integers(1, 5), data=st.data())
async def test_replayed_or_concurrently_duplicated_events_change_nothing(
        engine: BillingEngine, ledger: SqlUsageStore, stream: list[tuple[int, int, int]], copies: int, cut: int,
        data: st.DataObject) -> None:
    tenant = f"p{uuid.uuid4().hex[:10]}"  # each example its own tenant
    events = [event(tenant, JAN.start + timedelta(minutes=m), p, c) for m, p, c in stream]
    shuffled = data.draw(st.permutations(events))
    batches = [shuffled[i:i + cut] for i in range(0, len(shuffled), cut)] * copies  # re-shipped batches
    await asyncio.gather(*(ledger.insert_batch(batch) for batch in batches))  # concurrently, overlapping
    invoice = await engine.draft(tenant, JAN, JAN.end)
    segs = segments(JAN, "payg", PlanBook(SETTINGS.plans), BOOK)
    usage: list[dict[tuple[str, str], Tokens]] = [{} for _ in segs]
    for e in events:
        index = next(i for i, s in enumerate(segs) if s.start <= e.time < s.end)
        usage[index].setdefault(("m", "pro"), Tokens()).add(e.prompt_tokens, e.completion_tokens, 0)
    assert list(invoice.lines) == rate(JAN, segs, usage, BOOK)
    assert invoice.subtotal == sum((line.amount for line in invoice.lines), Decimal(0))
    final = await engine.finalize(invoice, JAN.end + timedelta(days=4))
    await ledger.insert_batch([event(tenant, JAN.start + timedelta(days=3), 1000, 1000)])  # late
    await asyncio.gather(*(engine.finalize(final, JAN.end + timedelta(days=5)) for _ in range(2)))
    assert await engine.get(final.id) == final  # finalized invoices never change


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grants=st.lists(st.integers(1, 3000), min_size=1, max_size=4), months=st.integers(1, 4),
       usage=st.lists(st.integers(0, 2_000_000), min_size=4, max_size=4))
async def test_credits_are_consumed_once_and_totals_add_up(engine: BillingEngine, ledger: SqlUsageStore,
                                                           grants: list[int], months: int, usage: list[int]) -> None:
    tenant = f"c{uuid.uuid4().hex[:10]}"
    await engine.store.put_account(Account(tenant, "pro", "UTC"), datetime(2025, 12, 1, tzinfo=UTC))
    for cents in grants:
        await engine.add_credit(tenant, Decimal(cents) / 100, "grant")
    granted = sum(Decimal(c) / 100 for c in grants)
    invoices = []
    for month in range(months):
        period = Period(datetime(2026, month + 1, 1, tzinfo=UTC), datetime(2026, month + 2, 1, tzinfo=UTC))
        await ledger.insert_batch([event(tenant, period.start + timedelta(days=3), usage[month], 0)])
        draft = await engine.draft(tenant, period, period.end)
        done = await asyncio.gather(*(engine.finalize(draft, period.end, force=True) for _ in range(2)))
        invoices.append(done[0])
    applied = sum((i.credits_applied for i in invoices), Decimal(0))
    remaining = sum((c.remaining for c in await engine.store.credits(tenant)), Decimal(0))
    assert applied + remaining == granted  # consumed once, never lost
    for invoice in invoices:
        rated = await engine.rate(tenant, Period(invoice.period_start, invoice.period_end), "pro")
        assert list(invoice.lines) == rated  # the rated usage plus the fee
        assert invoice.subtotal == sum((x.amount for x in rated), Decimal(0))
        assert invoice.total == invoice.subtotal - invoice.credits_applied >= 0
        assert invoice.state == ("paid" if invoice.total == 0 else "finalized")
