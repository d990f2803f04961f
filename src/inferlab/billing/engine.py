"""``BillingEngine``: the usage ledger rated into invoices, period by period.

- ``draft(tenant, period)`` rates the period from the ledger (``rating.rate``) and keeps it as the
  period's draft, re-rated on each call — late events within the grace window land on it.
- ``close_due(now)`` finalizes every period that ended more than ``grace_hours`` ago: its lines
  frozen, the tenant's credits applied once. Usage that reaches the ledger after that is found when
  the next period is drafted: each of the last ``adjustment_lookback`` finalized invoices is re-rated,
  and what its usage charge lacks (or exceeds) is an ``adjustment`` line on the new draft.
- ``mark_paid`` / ``void`` / ``mark_uncollectible`` move an invoice along ``invoice.TRANSITIONS``;
  ``credit_note`` refunds or credits a paid invoice, never past what was paid.

Every transition is written to the billing log. Plans come from ``billing.plans`` and the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from inferlab.billing.invoice import OPEN, Invoice, InvoiceState, can_move, invoice_id
from inferlab.billing.money import ZERO, text, to_cent
from inferlab.billing.periods import Period, period_of, periods_between
from inferlab.billing.plans import PlanBook
from inferlab.billing.protocol import Account, BillingStore, BillingUsage, Credit, CreditNote
from inferlab.billing.rating import Line, rate, segments, usage_charge
from inferlab.config.billing import BillingSettings, PlanVersion
from inferlab.errors import InvalidRequest, NotFound
from inferlab.metering.pricebook import PriceBook
from inferlab.store.billing import ordered_id

TierOf = Callable[[str], Awaitable[str | None]]
Exists = Callable[[str], Awaitable[bool]]


class BillingEngine:
    def __init__(self, settings: BillingSettings, store: BillingStore, usage: BillingUsage, book: PriceBook, *,
                 tier_of: TierOf | None = None, exists: Exists | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.settings = settings
        self.store = store
        self.usage = usage
        self.book = book
        self._tier_of = tier_of
        self._exists = exists
        self._plans = PlanBook(settings.plans)
        self._grace = timedelta(hours=settings.grace_hours)
        self._log = logger or logging.getLogger("inferlab.billing")

    @property
    def plans(self) -> PlanBook:
        return self._plans

    async def refresh_plans(self) -> None:
        stored = await self.store.plan_versions()
        parsed = {name: {at: PlanVersion.model_validate(spec) for at, spec in versions.items()}
                  for name, versions in stored.items()}
        self._plans = PlanBook(self.settings.plans, parsed)

    async def add_plan_version(self, name: str, version: PlanVersion, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        effective = version.effective or now
        await self.store.put_plan_version(name, effective, version.model_dump(mode="json", exclude_unset=True), now)
        await self.refresh_plans()
        await self.store.log("*", None, "plan.version", {"plan": name, "effective": effective.isoformat()}, now)

    # ---- accounts -----------------------------------------------------------------------------------
    async def account(self, tenant: str) -> Account:
        stored = await self.store.account(tenant)
        if stored is not None:
            return stored
        tier = await self._tier_of(tenant) if self._tier_of is not None else None
        plan = self.settings.tier_plans.get(tier or "", self.settings.default_plan)
        return Account(tenant, plan, self.settings.timezone)

    async def set_account(self, tenant: str, *, plan: str | None = None, timezone: str | None = None,
                          email: str | None = None, provider_customer: str | None = None) -> Account:
        await self.check_tenant(tenant)
        if plan is not None and plan not in self._plans:
            await self.refresh_plans()
            if plan not in self._plans:
                raise InvalidRequest(f"No plan '{plan}'", param="plan", code="unknown_plan")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (KeyError, ValueError):
                raise InvalidRequest(f"Unknown time zone '{timezone}'", param="timezone", code="invalid_value") from None
        before = await self.account(tenant)
        if timezone is not None and timezone != before.timezone and await self.store.invoices(tenant, limit=1):
            # periods in two zones would overlap (or leave a gap) at the change: billed twice or not at all
            raise InvalidRequest("The time zone of a tenant that has invoices cannot change", param="timezone",
                                 code="timezone_locked")
        after = Account(tenant, plan or before.plan, timezone or before.timezone, email or before.email,
                        provider_customer or before.provider_customer, before.created_at)
        now = datetime.now(UTC)
        await self.store.put_account(after, now)
        await self.store.log(tenant, None, "account.update", {"plan": after.plan, "timezone": after.timezone}, now)
        return after

    async def check_tenant(self, tenant: str) -> None:
        """``NotFound`` for a tenant the tenants' store does not know (when it is wired)."""
        if self._exists is not None and not await self._exists(tenant):
            raise NotFound("No such tenant")

    async def period_of(self, tenant: str, moment: datetime) -> Period:
        return period_of(moment, ZoneInfo((await self.account(tenant)).timezone))

    # ---- rating ---------------------------------------------------------------------------------------
    async def rate(self, tenant: str, period: Period, plan: str) -> list[Line]:
        """The period's lines from the ledger as it is now (usage, fees; no adjustments)."""
        if plan not in self._plans:
            await self.refresh_plans()
        segs = segments(period, plan, self._plans, self.book)
        usage = [await self.usage.tokens(tenant, seg.start, seg.end) for seg in segs]
        return rate(period, segs, usage, self.book)

    async def _adjustments(self, tenant: str, period: Period, exclude: str) -> list[Line]:
        lookback = self.settings.adjustment_lookback
        if lookback == 0:
            return []
        earlier = await self.store.invoices(tenant, before=period.start, limit=lookback + 24)
        billed_later: dict[str, Decimal] = {}
        for invoice in earlier:
            if invoice.id == exclude or invoice.state in ("draft", "void"):
                continue
            for line in invoice.lines:
                if line.kind == "adjustment" and line.ref is not None:
                    billed_later[line.ref] = billed_later.get(line.ref, ZERO) + line.amount
        lines: list[Line] = []
        closed = [i for i in earlier if i.state not in ("draft", "void")][:lookback]
        for invoice in sorted(closed, key=lambda i: i.period_start):
            rated = usage_charge(await self.rate(tenant, Period(invoice.period_start, invoice.period_end),
                                                 invoice.plan))
            delta = rated - usage_charge(invoice.lines) - billed_later.get(invoice.id, ZERO)
            if delta:
                lines.append(Line("adjustment", f"usage recorded after {invoice.id} was finalized", to_cent(delta),
                                  start=invoice.period_start, end=invoice.period_end, ref=invoice.id))
        return lines

    async def _lines(self, tenant: str, period: Period, plan: str, invoice: str) -> list[Line]:
        return [*await self.rate(tenant, period, plan), *await self._adjustments(tenant, period, invoice)]

    async def draft(self, tenant: str, period: Period, now: datetime | None = None) -> Invoice:
        """The period's invoice: re-rated while a draft, as it is once finalized."""
        found = await self._draft(tenant, period, now, keep_empty=True)
        assert found is not None
        return found

    async def _draft(self, tenant: str, period: Period, now: datetime | None, *, keep_empty: bool) -> Invoice | None:
        """Without ``keep_empty``, a period with nothing to charge and no invoice yet gets none."""
        now = now or datetime.now(UTC)
        account = await self.account(tenant)
        found = invoice_id(tenant, period.key)
        existing = await self.store.invoice(found)
        if existing is not None and existing.state != "draft":
            return existing
        lines = await self._lines(tenant, period, account.plan, found)
        if not lines and existing is None and not keep_empty:
            return None
        invoice = Invoice(found, tenant, period.start, period.end, "draft", self.settings.currency, account.plan,
                          tuple(lines), existing.created_at if existing else now)
        saved = await self.store.save_draft(invoice, now)
        if existing is None and saved.state == "draft":
            await self.store.log(tenant, found, "invoice.draft", {"subtotal": text(saved.subtotal)}, now)
        return saved

    async def finalize(self, invoice: Invoice, now: datetime | None = None, *, force: bool = False) -> Invoice:
        """Freeze a draft (after its grace window, or at once with ``force``); re-rated first."""
        now = now or datetime.now(UTC)
        if invoice.state != "draft":
            return invoice
        if not force and now < invoice.period_end + self._grace:
            raise InvalidRequest("The period's grace window is still open", code="too_early")
        period = Period(invoice.period_start, invoice.period_end)
        lines = await self._lines(invoice.tenant, period, invoice.plan, invoice.id)
        done = await self.store.finalize(invoice.id, lines, now, next_attempt_at=now)
        if done is None:  # finalized by someone else meanwhile
            current = await self.store.invoice(invoice.id)
            assert current is not None
            return current
        await self.store.log(done.tenant, done.id, "invoice.finalize",
                             {"subtotal": text(done.subtotal), "credits": text(done.credits_applied),
                              "total": text(done.total), "state": done.state}, now)
        return done

    async def close_due(self, now: datetime | None = None, tenants: Sequence[str] | None = None) -> list[Invoice]:
        """Draft and finalize every period that ended a grace window ago (every tenant with an
        account or usage); refresh the drafts of the periods still open. The invoices finalized."""
        now = now or datetime.now(UTC)
        if tenants is None:
            since = now - timedelta(days=62) - self._grace
            found = {a.tenant for a in await self.store.accounts()}
            found.update(await self.usage.tenants(since, now))
            tenants = sorted(found)
        finalized = []
        for tenant in tenants:
            account = await self.account(tenant)
            since = now - timedelta(days=62) - self._grace
            if account.created_at is not None:  # no invoice for a period before the account existed
                since = max(since, account.created_at)
            for period in periods_between(since, now, ZoneInfo(account.timezone)):
                invoice = await self._draft(tenant, period, now, keep_empty=False)
                if invoice is not None and invoice.state == "draft" and now >= period.end + self._grace:
                    finalized.append(await self.finalize(invoice, now))
        return finalized

    # ---- state changes ----------------------------------------------------------------------------------
    async def get(self, invoice_id: str, tenant: str | None = None) -> Invoice:
        """The invoice; a tenant asking for another tenant's is told it does not exist."""
        invoice = await self.store.invoice(invoice_id)
        if invoice is None or (tenant is not None and invoice.tenant != tenant):
            raise NotFound("No such invoice")
        return invoice

    async def _move(self, invoice: Invoice, to: InvoiceState, now: datetime, action: str,
                    detail: dict[str, Any], **changes: Any) -> Invoice:
        if not can_move(invoice.state, to):
            raise InvalidRequest(f"A {invoice.state} invoice cannot become {to}", code="invalid_state")
        moved = await self.store.update(invoice.id, [invoice.state], now, state=to, **changes)
        if moved is None:
            current = await self.get(invoice.id)
            if current.state == to:
                return current  # someone else made the same move
            raise InvalidRequest(f"The invoice is now {current.state}", code="invalid_state")
        await self.store.log(invoice.tenant, invoice.id, action, {"from": invoice.state, "to": to, **detail}, now)
        return moved

    async def mark_paid(self, invoice: Invoice, now: datetime | None = None, *, source: str = "manual",
                        reference: str | None = None) -> Invoice:
        """Paid in full (idempotent: an invoice already paid is returned as it is)."""
        now = now or datetime.now(UTC)
        if invoice.state == "paid":
            return invoice
        return await self._move(invoice, "paid", now, "invoice.paid", {"source": source, "reference": reference},
                                amount_paid=invoice.total, paid_at=now, next_attempt_at=None,
                                dunning="resolved" if invoice.dunning != "none" else "none")

    async def void(self, invoice: Invoice, now: datetime | None = None) -> Invoice:
        now = now or datetime.now(UTC)
        return await self._move(invoice, "void", now, "invoice.void", {}, voided_at=now, next_attempt_at=None)

    async def mark_uncollectible(self, invoice: Invoice, now: datetime | None = None) -> Invoice:
        now = now or datetime.now(UTC)
        return await self._move(invoice, "uncollectible", now, "invoice.uncollectible", {}, next_attempt_at=None)

    # ---- credits ------------------------------------------------------------------------------------------
    async def add_credit(self, tenant: str, amount: Decimal, reason: str, now: datetime | None = None) -> Credit:
        now = now or datetime.now(UTC)
        if amount <= 0 or to_cent(amount) != amount:
            raise InvalidRequest("A credit is a positive amount in whole cents", param="amount", code="invalid_value")
        await self.check_tenant(tenant)
        credit = Credit(ordered_id(), tenant, amount, amount, reason[:256], now)
        await self.store.add_credit(credit)
        await self.store.log(tenant, None, "credit.add", {"id": credit.id, "amount": text(amount)}, now)
        return credit

    async def credit_note(self, invoice: Invoice, amount: Decimal, *, kind: str, reason: str,
                          provider_ref: str | None = None, note_id: str | None = None,
                          now: datetime | None = None) -> Invoice:
        """Refund (``refund``: money back, by the provider) or credit (``credit``: a credit for later
        invoices) part of what was paid; never more than what is left of it."""
        from inferlab.billing.protocol import OverPaid

        now = now or datetime.now(UTC)
        if kind not in ("refund", "credit"):
            raise InvalidRequest("kind is refund or credit", param="kind", code="invalid_value")
        if amount <= 0 or to_cent(amount) != amount:
            raise InvalidRequest("amount is positive, in whole cents", param="amount", code="invalid_value")
        if invoice.state != "paid":
            raise InvalidRequest("Only a paid invoice can be refunded or credited", code="invalid_state")
        note = CreditNote(note_id or ordered_id(), invoice.id, invoice.tenant, kind,  # type: ignore[arg-type]
                          amount, reason[:256], now, provider_ref)
        try:
            updated = await self.store.add_credit_note(note)
        except OverPaid as exc:
            raise InvalidRequest(str(exc), param="amount", code="exceeds_paid") from None
        await self.store.log(invoice.tenant, invoice.id, f"invoice.{kind}", {"amount": text(amount),
                                                                              "note": note.id}, now)
        return updated

    async def open_invoices(self, tenant: str | None = None) -> Sequence[Invoice]:
        return await self.store.invoices(tenant, states=sorted(OPEN), limit=1000)


__all__ = ["BillingEngine"]
