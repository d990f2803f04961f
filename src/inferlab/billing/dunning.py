"""Collection and dunning: our own state machine over the finalized invoices.

    finalized ──attempt 1 (at once)──▶ paid
        │ failed: dunning "retrying", a notice, the next attempt at finalized_at + retry_hours[n-1]
        ▼
    attempts ≥ suspend_after_attempts and finalized_at + grace_days passed
        │ dunning "suspended": the tenant is suspended (tenants' set_status), a notice
        ▼
    paid (an attempt, a webhook, or by hand) ──▶ dunning "resolved"; the tenant is resumed when no
                                                 other invoice of its keeps it suspended

Each attempt is claimed first under its idempotency key (``<invoice>:pay:<n>``), so two gateways
never make the same attempt, and the provider is given the same key. A failure reported after the
invoice was paid (a late ``payment_failed`` webhook) changes nothing. Every step is in the billing
log; suspension and resumption are also in the admin audit log (by the tenants' manager).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from inferlab.billing.engine import BillingEngine
from inferlab.billing.invoice import Invoice
from inferlab.billing.money import text
from inferlab.billing.protocol import BillingStore, Payment
from inferlab.billing.provider import PaymentProvider, ProviderError
from inferlab.config.billing import DunningSettings
from inferlab.store.billing import ordered_id

TenantAction = Callable[[str], Awaitable[None]]


class Notifier(Protocol):
    async def notify(self, kind: str, invoice: Invoice, detail: dict[str, Any]) -> None: ...


class LogNotifier:
    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    async def notify(self, kind: str, invoice: Invoice, detail: dict[str, Any]) -> None:
        self._log.info("billing notice", extra={"notice": kind, "invoice": invoice.id, "tenant": invoice.tenant})


class WebhookNotifier:
    """POSTs ``{"type": "billing.<kind>", "invoice": ..., "tenant": ...}`` to the configured URL."""

    def __init__(self, session: Any, url: str, logger: logging.Logger, timeout_s: float = 5.0) -> None:
        self._session = session
        self._url = url
        self._log = logger
        self._timeout_s = timeout_s

    async def notify(self, kind: str, invoice: Invoice, detail: dict[str, Any]) -> None:
        import aiohttp

        body = {"type": f"billing.{kind}", "tenant": invoice.tenant, "invoice": invoice.id,
                "amount_due": text(invoice.amount_due), "currency": invoice.currency, **detail}
        try:
            async with self._session.post(self._url, json=body,
                                          timeout=aiohttp.ClientTimeout(total=self._timeout_s)) as answer:
                if answer.status >= 300:
                    self._log.warning("billing notice refused", extra={"status": answer.status, "notice": kind})
        except (aiohttp.ClientError, TimeoutError):
            self._log.warning("billing notice not delivered", extra={"notice": kind, "invoice": invoice.id})


@dataclass
class Outcome:
    attempted: int = 0
    paid: int = 0
    failed: int = 0
    suspended: int = 0


class Collector:
    def __init__(self, engine: BillingEngine, provider: PaymentProvider, settings: DunningSettings, *,
                 suspend: TenantAction, resume: TenantAction, notifier: Notifier,
                 logger: logging.Logger | None = None) -> None:
        self.engine = engine
        self.provider = provider
        self.settings = settings
        self._suspend = suspend
        self._resume = resume
        self._notifier = notifier
        self._log = logger or logging.getLogger("inferlab.billing.dunning")

    @property
    def store(self) -> BillingStore:
        return self.engine.store

    # ---- the provider's copies --------------------------------------------------------------------
    async def push(self, invoice: Invoice, now: datetime) -> Invoice:
        """Mirror a finalized invoice to the provider (once); the customer is created on demand."""
        if invoice.provider_ref or invoice.state not in ("finalized", "uncollectible"):
            return invoice
        account = await self.engine.account(invoice.tenant)
        customer = await self.provider.ensure_customer(account)
        if customer is None:
            return invoice
        if customer != account.provider_customer:
            await self.engine.set_account(invoice.tenant, provider_customer=customer)
        ref = await self.provider.push_invoice(invoice, customer)
        if ref is None:
            return invoice
        updated = await self.store.update(invoice.id, [invoice.state], now, provider_ref=ref)
        await self.store.log(invoice.tenant, invoice.id, "invoice.mirror", {"provider": self.provider.name}, now)
        return updated or invoice

    # ---- attempts ---------------------------------------------------------------------------------
    def _next_attempt(self, invoice: Invoice, attempt: int) -> datetime | None:
        hours = self.settings.retry_hours
        if attempt - 1 >= len(hours) or invoice.finalized_at is None:
            return None
        return invoice.finalized_at + timedelta(hours=hours[attempt - 1])

    async def attempt(self, invoice: Invoice, now: datetime) -> Invoice:
        """One payment attempt (the next one); the invoice after it."""
        invoice = await self.push(invoice, now)
        if self.provider.name == "none" or not invoice.provider_ref:  # nothing to collect with: paid by hand
            return await self.store.update(invoice.id, ["finalized", "uncollectible"], now,
                                           next_attempt_at=None) or invoice
        attempt = invoice.attempts + 1
        key = f"{invoice.id}:pay:{attempt}"
        if not await self.store.claim_payment(Payment(key, invoice.id, attempt, "pending", invoice.amount_due, now)):
            return invoice  # another gateway makes this attempt
        claimed = await self.store.update(invoice.id, ["finalized", "uncollectible"], now, attempts=attempt,
                                          next_attempt_at=self._next_attempt(invoice, attempt))
        if claimed is None:
            return await self.engine.get(invoice.id)
        try:
            result = await self.provider.pay(claimed, attempt)
        except ProviderError as exc:
            await self.store.put_payment(Payment(key, invoice.id, attempt, "failed", invoice.amount_due, now,
                                                 error=(exc.code or "provider_error")[:256]))
            await self.store.update(invoice.id, ["finalized", "uncollectible"], now, attempts=invoice.attempts,
                                    next_attempt_at=now + timedelta(minutes=15))  # the provider's fault: not counted
            raise
        await self.store.put_payment(Payment(key, invoice.id, attempt, result.state, invoice.amount_due, now,
                                             result.reference, result.error))
        await self.store.log(invoice.tenant, invoice.id, "payment.attempt",
                             {"attempt": attempt, "result": result.state, "error": result.error}, now)
        if result.state == "succeeded":
            return await self.paid(claimed, now, reference=result.reference, source=self.provider.name)
        if result.state == "failed":
            failed = claimed if claimed.dunning == "suspended" else (
                await self.store.update(invoice.id, ["finalized", "uncollectible"], now, dunning="retrying") or claimed)
            if claimed.dunning not in ("retrying", "suspended"):
                await self.store.log(invoice.tenant, invoice.id, "dunning.start", {"attempt": attempt}, now)
            await self._notifier.notify("payment_failed", failed, {"attempt": attempt, "error": result.error})
            return failed
        return claimed

    async def refund(self, invoice: Invoice, amount: Decimal, reason: str, now: datetime) -> Invoice:
        """Refund part of a paid invoice: the credit note first (bounded by what was paid, in one
        statement), then the provider, keyed by the note; a provider failure withdraws the note."""
        note_id = ordered_id()
        updated = await self.engine.credit_note(invoice, amount, kind="refund", reason=reason, note_id=note_id, now=now)
        payments = [p for p in await self.store.payments(invoice.id) if p.state == "succeeded"]
        if not payments:  # paid outside the provider (by hand): the money goes back the same way
            return updated
        try:
            ref = await self.provider.refund(invoice, amount, note_id, payments[-1].provider_ref)
        except ProviderError:
            await self.store.settle_credit_note(note_id, None)
            await self.store.log(invoice.tenant, invoice.id, "invoice.refund.withdrawn", {"note": note_id}, now)
            raise
        await self.store.settle_credit_note(note_id, ref)
        return updated

    async def card_changed(self, tenant: str, now: datetime) -> int:
        """A new payment method: every open invoice of the tenant is attempted again at once."""
        moved = 0
        for invoice in await self.engine.open_invoices(tenant):
            if await self.store.update(invoice.id, ["finalized", "uncollectible"], now, next_attempt_at=now):
                moved += 1
        await self.store.log(tenant, None, "payment_method.change", {"retried": moved}, now)
        return moved

    async def paid(self, invoice: Invoice, now: datetime, *, reference: str | None, source: str) -> Invoice:
        """The invoice is paid (an attempt, a webhook, by hand): resolve its dunning, resume the
        tenant if nothing else keeps it suspended. Idempotent."""
        was = invoice.dunning
        done = await self.engine.mark_paid(invoice, now, source=source, reference=reference)
        if was == "suspended":
            others = [i for i in await self.engine.open_invoices(invoice.tenant)
                      if i.dunning == "suspended" and i.id != invoice.id]
            if not others:
                await self._resume(invoice.tenant)
                await self.store.log(invoice.tenant, invoice.id, "tenant.reinstate", {}, now)
            await self._notifier.notify("reinstated", done, {})
        return done

    async def failed_elsewhere(self, invoice: Invoice, now: datetime, error: str | None) -> Invoice:
        """A failure the provider reported by itself (a webhook): logged; a paid invoice ignores it."""
        if invoice.state not in ("finalized", "uncollectible"):
            await self.store.log(invoice.tenant, invoice.id, "payment.failed.ignored", {"state": invoice.state}, now)
            return invoice
        await self.store.log(invoice.tenant, invoice.id, "payment.failed.reported", {"error": error}, now)
        if invoice.dunning == "none":
            return await self.store.update(invoice.id, ["finalized", "uncollectible"], now, dunning="retrying") \
                or invoice
        return invoice

    async def _maybe_suspend(self, invoice: Invoice, now: datetime) -> bool:
        if invoice.dunning == "suspended" or invoice.finalized_at is None:
            return False
        if invoice.attempts < self.settings.suspend_after_attempts:
            return False
        if now < invoice.finalized_at + timedelta(days=self.settings.grace_days):
            return False
        marked = await self.store.update(invoice.id, ["finalized", "uncollectible"], now, dunning="suspended")
        if marked is None:
            return False
        await self._suspend(invoice.tenant)
        await self.store.log(invoice.tenant, invoice.id, "tenant.suspend",
                             {"attempts": invoice.attempts, "amount_due": text(invoice.amount_due)}, now)
        await self._notifier.notify("suspended", marked, {"attempts": invoice.attempts})
        return True

    async def run_once(self, now: datetime | None = None) -> Outcome:
        now = now or datetime.now(UTC)
        outcome = Outcome()
        for invoice in await self.engine.open_invoices():
            current = invoice
            if invoice.next_attempt_at is not None and invoice.next_attempt_at <= now:
                try:
                    current = await self.attempt(invoice, now)
                except ProviderError:
                    self._log.warning("payment provider error", extra={"invoice": invoice.id})
                    continue
                outcome.attempted += current.attempts > invoice.attempts
                outcome.paid += current.state == "paid"
                outcome.failed += current.state != "paid" and current.attempts > invoice.attempts
            if current.state in ("finalized", "uncollectible") and await self._maybe_suspend(current, now):
                outcome.suspended += 1
        return outcome

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the store or provider down: logged, tried again next interval
                self._log.exception("billing collection failed")
            await asyncio.sleep(interval_s)

