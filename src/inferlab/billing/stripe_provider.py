"""``StripeProvider``: payments through Stripe with the official ``stripe`` SDK (the ``stripe``
extra; imported only when ``billing.provider`` is ``stripe``).

Our invoices are the source of truth; Stripe Billing Meters are not used. A tenant is one Stripe
customer (metadata ``tenant``); a card becomes the customer's default payment method.

Two ways to mirror an invoice, chosen by what the API answers:

- **invoice** (Stripe's API): one invoice item per line (amount to the cent, negative for
  adjustments and credits), then an invoice that takes them (``pending_invoice_items_behavior=
  include``, ``auto_advance`` off), finalized, then paid (``/pay``) once per attempt.
- **payment intent**, when the API will not create a one-off invoice (localstripe, the Stripe
  double the tests run, has invoices for subscriptions only, and no ``/finalize``): each attempt is
  a PaymentIntent for the invoice's total, confirmed off-session, its metadata carrying the
  invoice id, the attempt and every line (description and cents) — what reconciliation compares.

Every write carries an idempotency key derived from our ids — ``<invoice>:item:<n>``,
``<invoice>:invoice``, ``<invoice>:pay:<attempt>``, ``<invoice>:refund:<note>`` — never a fresh
random one, so a retried call cannot charge twice (Stripe answers a replay with the first result).
Items already created for an invoice are found by their metadata before any is created again.
Blocking SDK calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeVar

from inferlab.billing.invoice import Invoice
from inferlab.billing.money import minor_units
from inferlab.billing.protocol import Account
from inferlab.billing.provider import CardOnFile, MirroredInvoice, PaymentResult, ProviderError
from inferlab.billing.stripe_mirror import mirrored_lines
from inferlab.config.billing import StripeSettings

T = TypeVar("T")
Mode = Literal["invoice", "payment_intent"]
PI_PREFIX = "pi-mode:"  # a provider_ref in payment-intent mode: no Stripe invoice exists


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: StripeSettings, currency: str, *, client: Any | None = None) -> None:
        import stripe

        self._stripe = stripe
        if client is None:
            assert settings.api_key is not None
            bases: Any = {"api": settings.api_base} if settings.api_base else None
            client = stripe.StripeClient(settings.api_key.get_secret_value(), base_addresses=bases,
                                         max_network_retries=settings.max_network_retries)
        self._client = client
        self._currency = currency
        self.mode: Mode | None = None  # found on the first invoice pushed
        self.finalize_supported: bool | None = None

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(functools.partial(function, *args, **kwargs))
        except self._stripe.CardError:
            raise
        except self._stripe.StripeError as exc:
            raise ProviderError(f"Stripe: {exc.user_message or type(exc).__name__}", code="payment_provider_error") \
                from None

    # ---- customers and cards ---------------------------------------------------------------------
    async def ensure_customer(self, account: Account) -> str | None:
        if account.provider_customer:
            return account.provider_customer
        params: dict[str, Any] = {"name": account.tenant, "metadata": {"tenant": account.tenant}}
        if account.email:
            params["email"] = account.email
        customer = await self._call(self._client.v1.customers.create, params=params,
                                    options={"idempotency_key": f"customer:{account.tenant}"})
        return str(customer.id)

    async def attach_payment_method(self, customer: str, payment_method: str) -> None:
        try:
            await self._call(self._client.v1.payment_methods.attach, payment_method, params={"customer": customer})
        except self._stripe.CardError as exc:
            raise ProviderError(f"Stripe refused the card: {exc.user_message}", code=exc.code or "card_declined") \
                from None
        await self._call(self._client.v1.customers.update, customer,
                         params={"invoice_settings": {"default_payment_method": payment_method}})

    async def default_card(self, customer: str) -> CardOnFile | None:
        found = (await self._call(self._client.v1.customers.retrieve, customer)).to_dict()
        method = (found.get("invoice_settings") or {}).get("default_payment_method")
        if not method:
            return None
        method_id = method if isinstance(method, str) else str(method.get("id"))
        card = (await self._call(self._client.v1.payment_methods.retrieve, method_id)).to_dict().get("card")
        if not card:
            return None
        return CardOnFile(str(card.get("brand") or "card"), str(card.get("last4") or "")[-4:],
                          int(card.get("exp_month") or 0), int(card.get("exp_year") or 0))

    # ---- invoices -----------------------------------------------------------------------------------
    async def push_invoice(self, invoice: Invoice, customer: str) -> str | None:
        if invoice.provider_ref:
            return invoice.provider_ref
        if self.mode == "payment_intent":
            return PI_PREFIX + customer
        lines = mirrored_lines(invoice)
        have = {str((item.get("metadata") or {}).get("line")) for item in await self._pending_items(customer, invoice.id)}
        for index, (description, cents) in enumerate(lines):
            if str(index) in have:
                continue
            await self._call(self._client.v1.invoice_items.create,
                             params={"customer": customer, "amount": cents, "currency": self._currency,
                                     "description": description,
                                     "metadata": {"inferlab_invoice": invoice.id, "line": str(index)}},
                             options={"idempotency_key": f"{invoice.id}:item:{index}"})
        try:
            created = await asyncio.to_thread(functools.partial(
                self._client.v1.invoices.create,
                params={"customer": customer, "auto_advance": False, "collection_method": "charge_automatically",
                        "pending_invoice_items_behavior": "include", "metadata": {"inferlab_invoice": invoice.id}},
                options={"idempotency_key": f"{invoice.id}:invoice"}))
        except self._stripe.StripeError:
            # no one-off invoices here (localstripe): collect with payment intents instead
            self.mode = "payment_intent"
            await self._drop_pending(customer, invoice.id)
            return PI_PREFIX + customer
        self.mode = "invoice"
        mirrored = sum(line.amount for line in created.lines.data)
        if mirrored != sum(cents for _, cents in lines):
            raise ProviderError(f"Stripe's invoice {created.id} does not match {invoice.id}", code="mirror_mismatch")
        try:
            await asyncio.to_thread(functools.partial(self._client.v1.invoices.finalize_invoice, created.id,
                                                      params={"auto_advance": False}))
            self.finalize_supported = True
        except self._stripe.StripeError as exc:
            if exc.http_status != 404:
                raise ProviderError(f"Stripe: {exc.user_message}", code="payment_provider_error") from None
            self.finalize_supported = False  # no /finalize (localstripe): /pay finalizes
        return str(created.id)

    async def _pending_items(self, customer: str, invoice_id: str) -> list[dict[str, Any]]:
        """The customer's invoice items made for ``invoice_id`` and on no Stripe invoice yet."""
        found = await self._call(self._client.v1.invoice_items.list, params={"customer": customer, "limit": 100})
        items = [_plain(item) for item in found.data]
        return [item for item in items
                if (item.get("metadata") or {}).get("inferlab_invoice") == invoice_id and not item.get("invoice")]

    async def _drop_pending(self, customer: str, invoice_id: str) -> None:
        for item in await self._pending_items(customer, invoice_id):
            await self._call(self._client.v1.invoice_items.delete, item["id"])

    # ---- payments -------------------------------------------------------------------------------------
    async def pay(self, invoice: Invoice, attempt: int) -> PaymentResult:
        key = f"{invoice.id}:pay:{attempt}"
        ref = invoice.provider_ref or ""
        try:
            if ref.startswith(PI_PREFIX):
                return await self._pay_intent(invoice, ref.removeprefix(PI_PREFIX), attempt, key)
            paid = await self._call(self._client.v1.invoices.pay, ref, options={"idempotency_key": key})
            return PaymentResult("succeeded" if paid.status == "paid" else "pending", str(paid.id))
        except self._stripe.CardError as exc:
            return PaymentResult("failed", None, exc.code or "card_declined")

    async def _pay_intent(self, invoice: Invoice, customer: str, attempt: int, key: str) -> PaymentResult:
        found = _plain(await self._call(self._client.v1.customers.retrieve, customer))
        method = (found.get("invoice_settings") or {}).get("default_payment_method")
        if not method:
            return PaymentResult("failed", None, "no_payment_method")
        metadata = {"inferlab_invoice": invoice.id, "attempt": str(attempt)}
        for index, (description, cents) in enumerate(mirrored_lines(invoice)[:40]):
            metadata[f"line_{index}"] = f"{cents}|{description}"[:500]
        intent = await self._call(self._client.v1.payment_intents.create,
                                  params={"amount": minor_units(invoice.total), "currency": self._currency,
                                          "customer": customer, "payment_method": method, "metadata": metadata},
                                  options={"idempotency_key": key})
        try:
            confirmed = await asyncio.to_thread(functools.partial(
                self._client.v1.payment_intents.confirm, intent.id, options={"idempotency_key": key + ":confirm"}))
        except self._stripe.CardError as exc:
            return PaymentResult("failed", str(intent.id), exc.code or "card_declined")
        except self._stripe.StripeError as exc:
            raise ProviderError(f"Stripe: {exc.user_message}", code="payment_provider_error") from None
        if confirmed.status == "succeeded":
            return PaymentResult("succeeded", str(confirmed.id))
        return PaymentResult("pending" if confirmed.status == "processing" else "failed", str(confirmed.id),
                             None if confirmed.status == "processing" else confirmed.status)

    async def refund(self, invoice: Invoice, amount: Decimal, key: str, payment_ref: str | None = None) -> str | None:
        intent = payment_ref if payment_ref and payment_ref.startswith("pi_") else None
        if intent is None and invoice.provider_ref and not invoice.provider_ref.startswith(PI_PREFIX):
            found = _plain(await self._call(self._client.v1.invoices.retrieve, invoice.provider_ref))
            intent = found.get("payment_intent")
            if intent is None:  # newer API versions: the invoice's payments
                payments = await self._call(self._client.v1.invoice_payments.list,
                                            params={"invoice": invoice.provider_ref})
                paid = [_plain(p) for p in payments.data]
                intent = next(((p.get("payment") or {}).get("payment_intent") for p in paid
                               if p.get("status") == "paid" and (p.get("payment") or {}).get("payment_intent")), None)
        if intent is None:
            raise ProviderError("No Stripe payment to refund for this invoice", code="no_payment")
        refund = await self._call(self._client.v1.refunds.create,
                                  params={"payment_intent": intent, "amount": minor_units(amount)},
                                  options={"idempotency_key": f"{invoice.id}:refund:{key}"})
        return str(refund.id)

    async def fetch(self, invoice: Invoice, payment_ref: str | None = None) -> MirroredInvoice | None:
        ref = invoice.provider_ref
        if not ref:
            return None
        if ref.startswith(PI_PREFIX):
            if payment_ref is None:
                return None
            intent = await self._call(self._client.v1.payment_intents.retrieve, payment_ref)
            meta = _plain(intent).get("metadata") or {}
            lines = []
            for index in range(40):
                raw = meta.get(f"line_{index}")
                if raw is None:
                    break
                cents, _, description = str(raw).partition("|")
                lines.append((description, int(cents)))
            paid = int(intent.amount) if intent.status == "succeeded" else 0
            return MirroredInvoice(str(intent.id), "paid" if paid else str(intent.status), int(intent.amount), paid,
                                   tuple(lines))
        found = await self._call(self._client.v1.invoices.retrieve, ref)
        return MirroredInvoice(str(found.id), str(found.status), int(found.total), int(found.amount_paid),
                               tuple((str(line.description), int(line.amount)) for line in found.lines.data))


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (optional fields read with ``.get``)."""
    found: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return found
