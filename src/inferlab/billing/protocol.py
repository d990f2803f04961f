"""Billing's seams: where invoices are kept (``BillingStore``), where usage is read from
(``BillingUsage``) and who collects payment (``PaymentProvider``, ``provider.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from inferlab.billing.invoice import Invoice, InvoiceState
from inferlab.billing.rating import Line, Tokens


@dataclass(frozen=True, slots=True)
class Account:
    tenant: str
    plan: str
    timezone: str
    email: str | None = None
    provider_customer: str | None = None
    created_at: datetime | None = None  # billing starts with the period holding it (None: not stored)


@dataclass(frozen=True, slots=True)
class Credit:
    id: str
    tenant: str
    amount: Decimal
    remaining: Decimal
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: str
    invoice_id: str
    tenant: str
    kind: Literal["refund", "credit"]
    amount: Decimal
    reason: str
    created_at: datetime
    provider_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    key: str  # the idempotency key: the invoice and the attempt
    invoice_id: str
    attempt: int
    state: Literal["pending", "succeeded", "failed"]
    amount: Decimal
    created_at: datetime
    provider_ref: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    payload: Mapping[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CostRow:
    tenant: str
    model: str
    price: Decimal  # the ledger's list price (metering)
    hardware_cost: Decimal
    tokens: int


class OverPaid(Exception):
    """A refund or credit note for more than is left of what was paid."""


class BillingStore(Protocol):
    async def account(self, tenant: str) -> Account | None: ...
    async def accounts(self) -> Sequence[Account]: ...
    async def put_account(self, account: Account, now: datetime) -> None: ...
    async def plan_versions(self) -> dict[str, dict[datetime, dict[str, Any]]]: ...
    async def put_plan_version(self, name: str, effective: datetime, spec: dict[str, Any], now: datetime) -> None: ...

    async def invoice(self, invoice_id: str) -> Invoice | None: ...
    async def invoices(self, tenant: str | None, *, states: Sequence[InvoiceState] | None = None, limit: int = 100,
                       before: datetime | None = None) -> Sequence[Invoice]: ...
    async def save_draft(self, invoice: Invoice, now: datetime) -> Invoice:
        """Insert or replace ``invoice`` while it is a draft; the stored invoice (unchanged if it is not)."""
        ...

    async def finalize(self, invoice_id: str, lines: Sequence[Line], now: datetime,
                       next_attempt_at: datetime | None) -> Invoice | None:
        """In one transaction: draft → finalized with ``lines``, the tenant's credits consumed (oldest
        first, up to the subtotal, once). None when the invoice was not a draft."""
        ...

    async def update(self, invoice_id: str, expect: Sequence[InvoiceState], now: datetime, /,
                     **changes: Any) -> Invoice | None:
        """Apply ``changes`` if the invoice's state is in ``expect``; None (nothing written) if not."""
        ...

    async def add_credit(self, credit: Credit) -> None: ...
    async def credits(self, tenant: str) -> Sequence[Credit]: ...
    async def add_credit_note(self, note: CreditNote) -> Invoice:
        """Record ``note`` and raise the invoice's refunded amount; ``OverPaid`` if it would pass
        what was paid."""
        ...

    async def settle_credit_note(self, note_id: str, provider_ref: str | None) -> None:
        """The provider refunded the note: keep its reference; with None, the provider failed — the
        note is withdrawn and the invoice's refunded amount lowered again."""
        ...

    async def credit_notes(self, invoice_id: str) -> Sequence[CreditNote]: ...
    async def payment(self, key: str) -> Payment | None: ...
    async def claim_payment(self, payment: Payment) -> bool:
        """Record a new attempt; False when that attempt (its key) was claimed before."""
        ...

    async def put_payment(self, payment: Payment) -> None: ...
    async def payments(self, invoice_id: str) -> Sequence[Payment]: ...

    async def add_webhook(self, event: WebhookEvent) -> bool:
        """Keep the event; False when its id was seen before."""
        ...

    async def pending_webhooks(self, limit: int) -> Sequence[WebhookEvent]: ...
    async def webhook_done(self, event_id: str, outcome: str, now: datetime) -> bool: ...
    async def log(self, tenant: str, invoice_id: str | None, action: str, detail: dict[str, Any],
                  now: datetime) -> None: ...
    async def log_entries(self, tenant: str | None, limit: int) -> Sequence[dict[str, Any]]: ...


class BillingUsage(Protocol):
    async def tokens(self, tenant: str, start: datetime, end: datetime) -> dict[tuple[str, str], Tokens]:
        """(model, tier) → token sums of ``tenant``'s events in ``[start, end)``."""
        ...

    async def tenants(self, start: datetime, end: datetime) -> Sequence[str]:
        """Tenants with usage in ``[start, end)``."""
        ...

    async def costs(self, tenant: str | None, start: datetime, end: datetime) -> Sequence[CostRow]: ...
