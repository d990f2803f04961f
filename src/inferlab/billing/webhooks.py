"""Stripe's webhooks: verified on the raw body, kept once, processed after the answer.

``verify`` checks ``Stripe-Signature`` (``t=<unix>,v1=<hex>[,v1=...]``): HMAC-SHA256 of
``"<t>.<raw body>"`` under any active secret (two during a rotation), in constant time, and the
timestamp within ``tolerance_s`` of now. ``WebhookInbox.receive`` stores the event under its id —
a redelivery or a concurrent duplicate finds it there and changes nothing — and wakes the
processor; the HTTP answer does not wait for the work. ``process_pending`` applies the stored
events in the order received; each handler is idempotent and monotone (a ``payment_failed``
arriving after ``paid`` is recorded and ignored), so out-of-order and repeated deliveries are safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from inferlab.billing.dunning import Collector
from inferlab.billing.protocol import BillingStore, WebhookEvent
from inferlab.errors import InvalidRequest

PAID = frozenset({"invoice.paid", "invoice.payment_succeeded", "payment_intent.succeeded"})
FAILED = frozenset({"invoice.payment_failed", "payment_intent.payment_failed"})


class SignatureInvalid(InvalidRequest):
    default_code = "invalid_signature"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send (for tests and tools)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(payload: bytes, header: str | None, secrets: Sequence[str], *, tolerance_s: int,
           now: float | None = None) -> None:
    if not header:
        raise SignatureInvalid("Missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureInvalid("Malformed Stripe-Signature timestamp") from None
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("Stripe-Signature has no timestamp or no v1 signature")
    signed = str(timestamp).encode() + b"." + payload
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    if not any(hmac.compare_digest(e, given) for e in expected for given in signatures):
        raise SignatureInvalid("Stripe-Signature does not match")
    current = now if now is not None else datetime.now(UTC).timestamp()
    if abs(current - timestamp) > tolerance_s:
        raise SignatureInvalid("Stripe-Signature timestamp outside the tolerance")


def _invoice_of(obj: dict[str, Any]) -> str | None:
    found = (obj.get("metadata") or {}).get("inferlab_invoice")
    return str(found) if found else None


class WebhookInbox:
    def __init__(self, store: BillingStore, collector: Collector, secrets: Sequence[str], *, tolerance_s: int,
                 logger: logging.Logger | None = None) -> None:
        self._store = store
        self._collector = collector
        self._secrets = list(secrets)
        self._tolerance_s = tolerance_s
        self._log = logger or logging.getLogger("inferlab.billing.webhooks")
        self._wake = asyncio.Event()

    async def receive(self, payload: bytes, signature: str | None, now: datetime | None = None) -> bool:
        """Verify and keep the event; True when it is new. Bad signature or body → ``InvalidRequest``."""
        verify(payload, signature, self._secrets, tolerance_s=self._tolerance_s)
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The webhook body is not JSON", code="invalid_json") from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
            raise InvalidRequest("The webhook event has no id or type", code="invalid_value")
        new = await self._store.add_webhook(WebhookEvent(event["id"][:128], event["type"][:64], event,
                                                         now or datetime.now(UTC)))
        self._wake.set()
        return new

    async def handle(self, event: WebhookEvent, now: datetime) -> str:
        obj = ((event.payload.get("data") or {}).get("object")) or {}
        if event.type not in PAID | FAILED:
            return "ignored"
        invoice_id = _invoice_of(obj)
        if invoice_id is None:
            return "not ours"
        invoice = await self._store.invoice(invoice_id)
        if invoice is None:
            return "unknown invoice"
        if event.type in PAID:
            if invoice.state == "paid":
                return "already paid"
            if invoice.state not in ("finalized", "uncollectible"):
                return f"ignored ({invoice.state})"
            await self._collector.paid(invoice, now, reference=str(obj.get("id")), source="stripe.webhook")
            return "paid"
        error = ((obj.get("last_payment_error") or {}).get("code")) if isinstance(obj, dict) else None
        await self._collector.failed_elsewhere(invoice, now, error)
        return "failure recorded" if invoice.state != "paid" else "stale failure"

    async def process_pending(self, now: datetime | None = None, limit: int = 100) -> int:
        done = 0
        for event in await self._store.pending_webhooks(limit):
            at = now or datetime.now(UTC)
            outcome = await self.handle(event, at)
            if await self._store.webhook_done(event.id, outcome, at):
                done += 1
        return done

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.process_pending()
            except Exception:  # noqa: BLE001 - the store down: the events wait in it, tried again
                self._log.exception("webhook processing failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._wake.wait()
            self._wake.clear()
