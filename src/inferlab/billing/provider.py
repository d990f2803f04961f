"""``PaymentProvider``: who collects what our invoices say. InferLab rates and invoices; the
provider mirrors an invoice line for line, takes the payment and refunds.

``NullProvider`` (the default) collects nothing: invoices are paid by hand (``mark_paid``).
``StripeProvider`` (``stripe_provider.py``) uses the official SDK. A provider's failures become
``PaymentFailed`` (the card or the customer: dunning retries) or ``ProviderError`` (the provider
itself: tried again at the next run).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from inferlab.billing.invoice import Invoice
from inferlab.billing.protocol import Account
from inferlab.errors import UpstreamError


class ProviderError(UpstreamError):
    """The payment provider did not do what was asked (unreachable, refused the request)."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    state: Literal["succeeded", "failed", "pending"]
    reference: str | None = None  # the provider's payment id
    error: str | None = None  # e.g. card_declined


@dataclass(frozen=True, slots=True)
class MirroredInvoice:
    """The provider's copy of an invoice, in minor units (cents)."""

    reference: str
    status: str
    total: int
    amount_paid: int
    lines: tuple[tuple[str, int], ...]  # (description, amount)


@dataclass(frozen=True, slots=True)
class CardOnFile:
    """The customer's default card as the provider describes it: never its number."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int


class PaymentProvider(Protocol):
    name: str

    async def ensure_customer(self, account: Account) -> str | None:
        """The provider's customer for the tenant (created once); None: the provider has none."""
        ...

    async def attach_payment_method(self, customer: str, payment_method: str) -> None:
        """Make ``payment_method`` the customer's default for invoices."""
        ...

    async def default_card(self, customer: str) -> CardOnFile | None:
        """The customer's default payment method when it is a card (brand, last 4 digits, expiry)."""
        ...

    async def push_invoice(self, invoice: Invoice, customer: str) -> str | None:
        """Mirror a finalized invoice (line for line, to the cent), once; the provider's id."""
        ...

    async def pay(self, invoice: Invoice, attempt: int) -> PaymentResult:
        """Attempt ``attempt`` to collect the invoice (the idempotency key is the invoice and attempt)."""
        ...

    async def refund(self, invoice: Invoice, amount: Decimal, key: str, payment_ref: str | None = None) -> str | None:
        """Refund ``amount`` of a paid invoice (paid by ``payment_ref``); the provider's refund id."""
        ...

    async def fetch(self, invoice: Invoice, payment_ref: str | None = None) -> MirroredInvoice | None:
        """The provider's copy of an invoice (reconciliation)."""
        ...


class NullProvider:
    """No payment provider: invoices only."""

    name = "none"

    async def ensure_customer(self, account: Account) -> str | None:
        return None

    async def attach_payment_method(self, customer: str, payment_method: str) -> None:
        raise ProviderError("No payment provider is configured (billing.provider)", code="no_payment_provider")

    async def default_card(self, customer: str) -> CardOnFile | None:
        return None

    async def push_invoice(self, invoice: Invoice, customer: str) -> str | None:
        return None

    async def pay(self, invoice: Invoice, attempt: int) -> PaymentResult:
        return PaymentResult("pending")

    async def refund(self, invoice: Invoice, amount: Decimal, key: str, payment_ref: str | None = None) -> str | None:
        return None

    async def fetch(self, invoice: Invoice, payment_ref: str | None = None) -> MirroredInvoice | None:
        return None
