"""``SqlBillingStore``: invoices, credits, payments, webhook events and the billing log over
SQLAlchemy (SQLite and PostgreSQL, one code path).

Every state change is a conditional write (``WHERE state IN (...)``) inside one transaction, so two
gateways racing on one invoice change it once: the loser's condition no longer holds. Finalizing
locks the tenant's credits (``FOR UPDATE`` on PostgreSQL; SQLite has one writer) and records each
consumption under the key (invoice, credit), so a credit is consumed once. A credit note locks its
invoice and checks that refunds never pass what was paid.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inferlab.billing.invoice import Invoice, InvoiceState
from inferlab.billing.money import ZERO
from inferlab.billing.protocol import Account, Credit, CreditNote, OverPaid, Payment, WebhookEvent
from inferlab.billing.rating import Line
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import (
    BillingAccountRow,
    BillingCreditNoteRow,
    BillingCreditRow,
    BillingCreditUseRow,
    BillingInvoiceRow,
    BillingLogRow,
    BillingPaymentRow,
    BillingPlanRow,
    BillingWebhookRow,
)


def ordered_id() -> str:
    """Time-ordered and unique: 16 hex digits of nanoseconds, 8 random."""
    return f"{time.time_ns():016x}{secrets.token_hex(4)}"


def _invoice(row: BillingInvoiceRow) -> Invoice:
    return Invoice(
        id=row.id, tenant=row.tenant, period_start=row.period_start, period_end=row.period_end,
        state=row.state,  # type: ignore[arg-type]
        currency=row.currency, plan=row.plan, lines=tuple(Line.from_json(x) for x in row.lines),
        created_at=row.created_at, credits_applied=row.credits_applied, amount_paid=row.amount_paid,
        amount_refunded=row.amount_refunded, finalized_at=row.finalized_at, paid_at=row.paid_at,
        voided_at=row.voided_at, provider_ref=row.provider_ref, attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, dunning=row.dunning)  # type: ignore[arg-type]


def _row_values(invoice: Invoice, now: datetime) -> dict[str, Any]:
    return {"id": invoice.id, "tenant": invoice.tenant, "period_start": invoice.period_start,
            "period_end": invoice.period_end, "state": invoice.state, "currency": invoice.currency,
            "plan": invoice.plan, "lines": [line.as_json() for line in invoice.lines], "subtotal": invoice.subtotal,
            "credits_applied": invoice.credits_applied, "amount_paid": invoice.amount_paid,
            "amount_refunded": invoice.amount_refunded, "created_at": invoice.created_at, "updated_at": now,
            "finalized_at": invoice.finalized_at, "paid_at": invoice.paid_at, "voided_at": invoice.voided_at,
            "provider_ref": invoice.provider_ref, "attempts": invoice.attempts,
            "next_attempt_at": invoice.next_attempt_at, "dunning": invoice.dunning}


class SqlBillingStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def _locking(self) -> bool:
        return self._db.dialect == "postgresql"

    # ---- accounts and plans -------------------------------------------------------------------
    @bounded
    async def account(self, tenant: str) -> Account | None:
        async with self._db.sessions() as session:
            row = await session.get(BillingAccountRow, tenant)
            return _account(row) if row is not None else None

    @bounded
    async def accounts(self) -> Sequence[Account]:
        async with self._db.sessions() as session:
            rows = await session.scalars(select(BillingAccountRow).order_by(BillingAccountRow.tenant))
            return [_account(row) for row in rows]

    @bounded
    async def put_account(self, account: Account, now: datetime) -> None:
        async with self._db.sessions.begin() as session:
            row = await session.get(BillingAccountRow, account.tenant)
            values = {"plan": account.plan, "timezone": account.timezone, "email": account.email,
                      "provider_customer": account.provider_customer, "updated_at": now}
            if row is None:
                session.add(BillingAccountRow(tenant=account.tenant, created_at=account.created_at or now, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)

    @bounded
    async def plan_versions(self) -> dict[str, dict[datetime, dict[str, Any]]]:
        found: dict[str, dict[datetime, dict[str, Any]]] = {}
        async with self._db.sessions() as session:
            for row in await session.scalars(select(BillingPlanRow)):
                found.setdefault(row.name, {})[row.effective] = row.spec
        return found

    @bounded
    async def put_plan_version(self, name: str, effective: datetime, spec: dict[str, Any], now: datetime) -> None:
        async with self._db.sessions.begin() as session:
            row = await session.get(BillingPlanRow, (name, effective))
            if row is None:
                session.add(BillingPlanRow(name=name, effective=effective, spec=spec, created_at=now))
            else:
                row.spec, row.created_at = spec, now

    # ---- invoices -------------------------------------------------------------------------------
    @bounded
    async def invoice(self, invoice_id: str) -> Invoice | None:
        async with self._db.sessions() as session:
            row = await session.get(BillingInvoiceRow, invoice_id)
            return _invoice(row) if row is not None else None

    @bounded
    async def invoices(self, tenant: str | None, *, states: Sequence[InvoiceState] | None = None, limit: int = 100,
                       before: datetime | None = None) -> Sequence[Invoice]:
        query = select(BillingInvoiceRow).order_by(BillingInvoiceRow.period_start.desc(),
                                                   BillingInvoiceRow.id).limit(limit)
        if tenant is not None:
            query = query.where(BillingInvoiceRow.tenant == tenant)
        if states is not None:
            query = query.where(BillingInvoiceRow.state.in_(list(states)))
        if before is not None:
            query = query.where(BillingInvoiceRow.period_start < before)
        async with self._db.sessions() as session:
            return [_invoice(row) for row in await session.scalars(query)]

    @bounded
    async def save_draft(self, invoice: Invoice, now: datetime) -> Invoice:
        for _ in range(2):  # a concurrent insert of the same draft: read it back the second time
            try:
                async with self._db.sessions.begin() as session:
                    row = await session.get(BillingInvoiceRow, invoice.id, with_for_update=self._locking)
                    if row is None:
                        session.add(BillingInvoiceRow(**_row_values(invoice, now)))
                        return invoice
                    if row.state != "draft":
                        return _invoice(row)
                    row.lines = [line.as_json() for line in invoice.lines]
                    row.subtotal, row.plan, row.updated_at = invoice.subtotal, invoice.plan, now
                    return _invoice(row)
            except IntegrityError:
                continue
        raise RuntimeError(f"invoice {invoice.id} could not be saved")

    @bounded
    async def finalize(self, invoice_id: str, lines: Sequence[Line], now: datetime,
                       next_attempt_at: datetime | None) -> Invoice | None:
        subtotal = sum((line.amount for line in lines), ZERO)
        async with self._db.sessions.begin() as session:
            # the conditional write comes first: it takes the row (PostgreSQL) or the database
            # (SQLite) for the rest of the transaction, so a racing finalize finds no draft
            taken = await session.execute(
                update(BillingInvoiceRow).where(BillingInvoiceRow.id == invoice_id, BillingInvoiceRow.state == "draft")
                .values(state="finalized", lines=[line.as_json() for line in lines], subtotal=subtotal,
                        finalized_at=now, updated_at=now, next_attempt_at=next_attempt_at))
            if getattr(taken, "rowcount", 0) != 1:
                return None
            row = await session.get(BillingInvoiceRow, invoice_id, populate_existing=True)
            assert row is not None
            applied = await self._consume_credits(session, row.tenant, invoice_id, max(subtotal, ZERO))
            row.credits_applied = applied
            if subtotal - applied <= 0:
                row.state, row.paid_at, row.next_attempt_at = "paid", now, None
            await session.flush()
            return _invoice(row)

    async def _consume_credits(self, session: AsyncSession, tenant: str, invoice_id: str, due: Decimal) -> Decimal:
        query = (select(BillingCreditRow).where(BillingCreditRow.tenant == tenant, BillingCreditRow.remaining > 0)
                 .order_by(BillingCreditRow.created_at, BillingCreditRow.id))
        if self._locking:
            query = query.with_for_update()
        applied = ZERO
        for credit in await session.scalars(query):
            if applied >= due:
                break
            take = min(credit.remaining, due - applied)
            credit.remaining -= take
            applied += take
            session.add(BillingCreditUseRow(invoice_id=invoice_id, credit_id=credit.id, amount=take))
        return applied

    @bounded
    async def update(self, invoice_id: str, expect: Sequence[InvoiceState], now: datetime, /,
                     **changes: Any) -> Invoice | None:
        async with self._db.sessions.begin() as session:
            taken = await session.execute(
                update(BillingInvoiceRow)
                .where(BillingInvoiceRow.id == invoice_id, BillingInvoiceRow.state.in_(list(expect)))
                .values(updated_at=now, **changes))
            if getattr(taken, "rowcount", 0) != 1:
                return None
            row = await session.get(BillingInvoiceRow, invoice_id, populate_existing=True)
            return _invoice(row) if row is not None else None

    # ---- credits and credit notes -----------------------------------------------------------------
    @bounded
    async def add_credit(self, credit: Credit) -> None:
        async with self._db.sessions.begin() as session:
            session.add(BillingCreditRow(id=credit.id, tenant=credit.tenant, amount=credit.amount,
                                         remaining=credit.remaining, reason=credit.reason,
                                         created_at=credit.created_at))

    @bounded
    async def credits(self, tenant: str) -> Sequence[Credit]:
        async with self._db.sessions() as session:
            rows = await session.scalars(select(BillingCreditRow).where(BillingCreditRow.tenant == tenant)
                                         .order_by(BillingCreditRow.created_at, BillingCreditRow.id))
            return [Credit(r.id, r.tenant, r.amount, r.remaining, r.reason, r.created_at) for r in rows]

    @bounded
    async def add_credit_note(self, note: CreditNote) -> Invoice:
        if note.amount <= 0:
            raise OverPaid("a credit note is a positive amount")
        async with self._db.sessions.begin() as session:
            row_ = BillingInvoiceRow
            refunded = row_.amount_refunded + note.amount  # the check and the write are one statement
            taken = await session.execute(
                update(row_).where(row_.id == note.invoice_id, row_.tenant == note.tenant, row_.state == "paid",
                                   refunded <= row_.amount_paid)
                .values(amount_refunded=refunded, updated_at=note.created_at))
            if getattr(taken, "rowcount", 0) != 1:
                found = await session.get(row_, note.invoice_id)
                left = found.amount_paid - found.amount_refunded if found is not None else ZERO
                raise OverPaid(f"at most {left} is left to refund or credit")
            session.add(BillingCreditNoteRow(id=note.id, invoice_id=note.invoice_id, tenant=note.tenant,
                                             kind=note.kind, amount=note.amount, reason=note.reason,
                                             provider_ref=note.provider_ref, created_at=note.created_at))
            if note.kind == "credit":
                session.add(BillingCreditRow(id=note.id, tenant=note.tenant, amount=note.amount,
                                             remaining=note.amount, reason=f"credit note on {note.invoice_id}",
                                             created_at=note.created_at))
            row = await session.get(row_, note.invoice_id, populate_existing=True)
            assert row is not None
            return _invoice(row)

    @bounded
    async def settle_credit_note(self, note_id: str, provider_ref: str | None) -> None:
        async with self._db.sessions.begin() as session:
            note = await session.get(BillingCreditNoteRow, note_id)
            if note is None:
                return
            if provider_ref is not None:
                note.provider_ref = provider_ref
                return
            row_ = BillingInvoiceRow
            await session.execute(update(row_).where(row_.id == note.invoice_id)
                                  .values(amount_refunded=row_.amount_refunded - note.amount))
            await session.delete(note)

    @bounded
    async def credit_notes(self, invoice_id: str) -> Sequence[CreditNote]:
        async with self._db.sessions() as session:
            rows = await session.scalars(select(BillingCreditNoteRow)
                                         .where(BillingCreditNoteRow.invoice_id == invoice_id)
                                         .order_by(BillingCreditNoteRow.created_at))
            return [CreditNote(r.id, r.invoice_id, r.tenant, r.kind, r.amount, r.reason,  # type: ignore[arg-type]
                               r.created_at, r.provider_ref) for r in rows]

    # ---- payments ---------------------------------------------------------------------------------------
    @bounded
    async def payment(self, key: str) -> Payment | None:
        async with self._db.sessions() as session:
            row = await session.get(BillingPaymentRow, key)
            return _payment(row) if row is not None else None

    @bounded
    async def claim_payment(self, payment: Payment) -> bool:
        try:
            async with self._db.sessions.begin() as session:
                session.add(BillingPaymentRow(key=payment.key, invoice_id=payment.invoice_id, attempt=payment.attempt,
                                              state=payment.state, amount=payment.amount, created_at=payment.created_at))
            return True
        except IntegrityError:
            return False

    @bounded
    async def put_payment(self, payment: Payment) -> None:
        async with self._db.sessions.begin() as session:
            row = await session.get(BillingPaymentRow, payment.key)
            if row is None:
                session.add(BillingPaymentRow(key=payment.key, invoice_id=payment.invoice_id, attempt=payment.attempt,
                                              state=payment.state, amount=payment.amount,
                                              provider_ref=payment.provider_ref, error=payment.error,
                                              created_at=payment.created_at))
            else:
                row.state, row.provider_ref, row.error = payment.state, payment.provider_ref, payment.error

    @bounded
    async def payments(self, invoice_id: str) -> Sequence[Payment]:
        async with self._db.sessions() as session:
            rows = await session.scalars(select(BillingPaymentRow).where(BillingPaymentRow.invoice_id == invoice_id)
                                         .order_by(BillingPaymentRow.attempt))
            return [_payment(row) for row in rows]

    # ---- webhook inbox -----------------------------------------------------------------------------------
    @bounded
    async def add_webhook(self, event: WebhookEvent) -> bool:
        try:
            async with self._db.sessions.begin() as session:
                session.add(BillingWebhookRow(id=event.id, type=event.type, payload=dict(event.payload),
                                              received_at=event.received_at))
            return True
        except IntegrityError:
            return False

    @bounded
    async def pending_webhooks(self, limit: int) -> Sequence[WebhookEvent]:
        async with self._db.sessions() as session:
            rows = await session.scalars(select(BillingWebhookRow).where(BillingWebhookRow.processed_at.is_(None))
                                         .order_by(BillingWebhookRow.received_at, BillingWebhookRow.id).limit(limit))
            return [WebhookEvent(r.id, r.type, r.payload, r.received_at) for r in rows]

    @bounded
    async def webhook_done(self, event_id: str, outcome: str, now: datetime) -> bool:
        async with self._db.sessions.begin() as session:
            taken = await session.execute(
                update(BillingWebhookRow).where(BillingWebhookRow.id == event_id,
                                                 BillingWebhookRow.processed_at.is_(None))
                .values(processed_at=now, outcome=outcome[:64]))
            return bool(getattr(taken, "rowcount", 0) == 1)

    # ---- the billing log ---------------------------------------------------------------------------------
    @bounded
    async def log(self, tenant: str, invoice_id: str | None, action: str, detail: dict[str, Any],
                  now: datetime) -> None:
        async with self._db.sessions.begin() as session:
            session.add(BillingLogRow(id=ordered_id(), created_at=now, tenant=tenant, invoice_id=invoice_id,
                                      action=action, detail=detail))

    @bounded
    async def log_entries(self, tenant: str | None, limit: int) -> Sequence[dict[str, Any]]:
        query = select(BillingLogRow).order_by(BillingLogRow.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(BillingLogRow.tenant == tenant)
        async with self._db.sessions() as session:
            return [{"id": r.id, "created_at": r.created_at.isoformat(), "tenant": r.tenant,
                     "invoice_id": r.invoice_id, "action": r.action, "detail": r.detail}
                    for r in await session.scalars(query)]


def _account(row: BillingAccountRow) -> Account:
    return Account(row.tenant, row.plan, row.timezone, row.email, row.provider_customer, row.created_at)


def _payment(row: BillingPaymentRow) -> Payment:
    return Payment(row.key, row.invoice_id, row.attempt, row.state, row.amount,  # type: ignore[arg-type]
                   row.created_at, row.provider_ref, row.error)


__all__ = ["SqlBillingStore", "ordered_id"]
