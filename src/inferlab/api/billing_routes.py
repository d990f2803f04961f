"""Billing over HTTP.

- ``/v1/billing/invoices`` (any authenticated caller): the caller's own tenant's invoices, as JSON
  or rendered HTML; another tenant's invoice is a 404, exactly like a missing one.
- ``/admin/billing/...`` (platform admins): invoices of any tenant and their state changes,
  accounts (plan, time zone, card), credits, plan versions, reconciliation, margins, the log.
- ``POST /webhooks/stripe`` (public, authenticated by ``Stripe-Signature``): verified on the raw
  body, stored once, answered at once; the work happens in the inbox's background service.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from inferlab.api.admin_routes import ONE, _Body, _json, parse_body
from inferlab.api.auth import PRINCIPAL
from inferlab.api.body import read_body
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import INFERENCE, PLATFORM_ADMIN, PUBLIC
from inferlab.billing.build import BillingServices
from inferlab.billing.invoice import STATES, Invoice
from inferlab.billing.money import text
from inferlab.billing.reconcile import margins
from inferlab.billing.render import invoice_html
from inferlab.config.billing import PlanVersion
from inferlab.errors import InferLabError, InvalidRequest, NotFound

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
AMOUNT = r"^\d{1,10}(\.\d{1,2})?$"
INVOICE_PARAMS = (Param("tenant", "only this tenant"), Param("status", "only this status", schema={"enum": list(STATES)}),
                  Param("limit", "at most this many (default 100)"))


class AccountIn(_Body):
    plan: str | None = Field(None, max_length=64)
    timezone: str | None = Field(None, max_length=64, description="IANA name, e.g. Europe/Berlin")
    email: str | None = Field(None, max_length=256)


class CardIn(_Body):
    payment_method: str = Field(max_length=128, description="the provider's payment method id (e.g. pm_...)")


class CreditIn(_Body):
    tenant: str = Field(max_length=64)
    amount: str = Field(pattern=AMOUNT, description="USD, e.g. 12.50")
    reason: str = Field("", max_length=256)


class RefundIn(_Body):
    amount: str = Field(pattern=AMOUNT)
    kind: Literal["refund", "credit"] = "refund"
    reason: str = Field("", max_length=256)


class DraftIn(_Body):
    tenant: str = Field(max_length=64)
    at: str | None = Field(None, description="an instant in the period (ISO 8601); default: now")


def _tenant(request: web.Request) -> str:
    principal = request.get(PRINCIPAL)
    return principal.tenant_id if principal is not None else "default"


def _id(request: web.Request, name: str = "invoice_id") -> str:
    value = request.match_info[name]
    if not _ID.match(value):
        raise NotFound("No such invoice")
    return value


def _instant(raw: str | None, name: str) -> datetime:
    if not raw:
        return datetime.now(UTC)
    try:
        found = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 instant", param=name, code="invalid_value") from None
    if found.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone", param=name, code="invalid_value")
    return found


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise InvalidRequest("limit is 1 to 1000", param="limit", code="invalid_value")
    return int(raw)


def _list(invoices: list[Invoice], *, admin: bool) -> web.Response:
    return _json({"object": "list", "data": [i.as_json(admin=admin) for i in invoices]})


class BillingRoutes:
    def __init__(self, billing: BillingServices, max_body_bytes: int, *, admin: bool) -> None:
        self._billing = billing
        self._engine = billing.engine
        self._limit = max_body_bytes
        self._admin = admin

    def routes(self) -> list[RouteSpec]:
        tags = ("billing",)
        found = [
            RouteSpec("GET", "/v1/billing/invoices", self.my_invoices, INFERENCE, "Your tenant's invoices", tags,
                      params=(Param("limit", "at most this many (default 100)"),), errors=(400,)),
            RouteSpec("GET", "/v1/billing/invoices/{invoice_id}", self.my_invoice, INFERENCE,
                      "One of your tenant's invoices", tags, errors=ONE),
            RouteSpec("GET", "/v1/billing/invoices/{invoice_id}/html", self.my_invoice_html, INFERENCE,
                      "One of your tenant's invoices, rendered as HTML", tags, errors=ONE),
            RouteSpec("GET", "/v1/billing/invoices/{invoice_id}/pdf", self.my_invoice_pdf, INFERENCE,
                      "One of your tenant's invoices as a PDF (needs the `pdf` extra: 501 without it)", tags,
                      errors=(404, 501)),
            RouteSpec("POST", "/webhooks/stripe", self.stripe_webhook, PUBLIC,
                      "Stripe's events, authenticated by Stripe-Signature", tags, errors=(400,)),
        ]
        if not self._admin:
            return found
        inv = "/admin/billing/invoices/{invoice_id}"
        return [
            *found,
            RouteSpec("GET", "/admin/billing/invoices", self.invoices, PLATFORM_ADMIN, "Invoices of any tenant", tags,
                      params=INVOICE_PARAMS, errors=(400,)),
            RouteSpec("POST", "/admin/billing/drafts", self.draft, PLATFORM_ADMIN,
                      "Rate a tenant's period now: its draft invoice (re-rated while a draft)", tags, DraftIn),
            RouteSpec("POST", "/admin/billing/close", self.close, PLATFORM_ADMIN,
                      "Finalize every period past its grace window (the billing job, now)", tags),
            RouteSpec("POST", "/admin/billing/collect", self.collect, PLATFORM_ADMIN,
                      "Run payment collection and dunning now", tags),
            RouteSpec("GET", inv, self.invoice, PLATFORM_ADMIN, "One invoice", tags, errors=ONE),
            RouteSpec("GET", inv + "/html", self.invoice_html, PLATFORM_ADMIN, "One invoice as HTML", tags,
                      errors=ONE),
            RouteSpec("POST", inv + "/finalize", self.finalize, PLATFORM_ADMIN,
                      "Finalize a draft now (its grace window need not be over)", tags, errors=(400, 404)),
            RouteSpec("POST", inv + "/void", self.void, PLATFORM_ADMIN, "Void a finalized invoice", tags,
                      errors=(400, 404)),
            RouteSpec("POST", inv + "/uncollectible", self.uncollectible, PLATFORM_ADMIN,
                      "Mark a finalized invoice uncollectible", tags, errors=(400, 404)),
            RouteSpec("POST", inv + "/paid", self.paid, PLATFORM_ADMIN, "Record a payment made outside the provider",
                      tags, errors=(400, 404)),
            RouteSpec("POST", inv + "/refunds", self.refund, PLATFORM_ADMIN,
                      "Refund or credit part of a paid invoice (never more than was paid)", tags, RefundIn,
                      errors=(400, 404)),
            RouteSpec("GET", "/admin/billing/accounts/{tenant_id}", self.account, PLATFORM_ADMIN,
                      "A tenant's billing account", tags),
            RouteSpec("PATCH", "/admin/billing/accounts/{tenant_id}", self.update_account, PLATFORM_ADMIN,
                      "Change a tenant's plan, time zone or e-mail", tags, AccountIn),
            RouteSpec("POST", "/admin/billing/accounts/{tenant_id}/payment-method", self.card, PLATFORM_ADMIN,
                      "Make a card the tenant's default at the payment provider", tags, CardIn, errors=(400, 502)),
            RouteSpec("POST", "/admin/billing/credits", self.credit, PLATFORM_ADMIN,
                      "Grant a tenant a credit (consumed by its next invoices, once)", tags, CreditIn, status=201),
            RouteSpec("GET", "/admin/billing/plans", self.plans, PLATFORM_ADMIN, "Plans and their versions", tags),
            RouteSpec("POST", "/admin/billing/plans/{plan}/versions", self.add_plan_version, PLATFORM_ADMIN,
                      "Add a plan version (effective from its instant)", tags, PlanVersion, status=201),
            RouteSpec("GET", "/admin/billing/reconciliation", self.reconcile, PLATFORM_ADMIN,
                      "Differences between our invoices and the payment provider's", tags),
            RouteSpec("GET", "/admin/billing/margins", self.margins, PLATFORM_ADMIN,
                      "Revenue, hardware cost and margin per tenant and model", tags,
                      params=(Param("at", "an instant in the period (default now)"), Param("tenant", "one tenant"))),
            RouteSpec("GET", "/admin/billing/log", self.log, PLATFORM_ADMIN, "The billing log, newest first", tags,
                      params=(Param("tenant", "one tenant"), Param("limit", "at most this many"))),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    # ---- the customer's -----------------------------------------------------------------------
    async def my_invoices(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"limit"})
        if unknown:
            raise InvalidRequest(f"unknown parameter {unknown[0]!r}", param=unknown[0], code="unknown_parameter")
        return _list(list(await self._engine.store.invoices(_tenant(request), limit=_limit(request))), admin=False)

    async def my_invoice(self, request: web.Request) -> web.Response:
        return _json((await self._engine.get(_id(request), tenant=_tenant(request))).as_json())

    async def my_invoice_html(self, request: web.Request) -> web.Response:
        invoice = await self._engine.get(_id(request), tenant=_tenant(request))
        return web.Response(text=invoice_html(invoice), content_type="text/html")

    async def my_invoice_pdf(self, request: web.Request) -> web.Response:
        invoice = await self._engine.get(_id(request), tenant=_tenant(request))
        return web.Response(body=await asyncio.to_thread(_pdf, invoice), content_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="{invoice.id}.pdf"'})

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        payload = await read_body(request, self._limit)
        new = await self._billing.inbox.receive(payload, request.headers.get("Stripe-Signature"))
        return _json({"received": True, "duplicate": not new})

    # ---- the admin's ---------------------------------------------------------------------------
    async def invoices(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status is not None and status not in STATES:
            raise InvalidRequest(f"status is one of {', '.join(STATES)}", param="status", code="invalid_value")
        found = await self._engine.store.invoices(request.query.get("tenant"), limit=_limit(request),
                                                  states=[status] if status else None)
        return _list(list(found), admin=True)

    async def invoice(self, request: web.Request) -> web.Response:
        return _json((await self._engine.get(_id(request))).as_json(admin=True))

    async def invoice_html(self, request: web.Request) -> web.Response:
        return web.Response(text=invoice_html(await self._engine.get(_id(request))), content_type="text/html")

    async def draft(self, request: web.Request) -> web.Response:
        body = await parse_body(request, DraftIn, self._limit)
        await self._engine.check_tenant(body.tenant)
        period = await self._engine.period_of(body.tenant, _instant(body.at, "at"))
        return _json((await self._engine.draft(body.tenant, period)).as_json(admin=True))

    async def close(self, request: web.Request) -> web.Response:
        done = await self._engine.close_due()
        return _list(done, admin=True)

    async def collect(self, request: web.Request) -> web.Response:
        outcome = await self._billing.collector.run_once()
        return _json({"attempted": outcome.attempted, "paid": outcome.paid, "failed": outcome.failed,
                      "suspended": outcome.suspended})

    async def finalize(self, request: web.Request) -> web.Response:
        invoice = await self._engine.finalize(await self._engine.get(_id(request)), force=True)
        return _json(invoice.as_json(admin=True))

    async def void(self, request: web.Request) -> web.Response:
        return _json((await self._engine.void(await self._engine.get(_id(request)))).as_json(admin=True))

    async def uncollectible(self, request: web.Request) -> web.Response:
        invoice = await self._engine.mark_uncollectible(await self._engine.get(_id(request)))
        return _json(invoice.as_json(admin=True))

    async def paid(self, request: web.Request) -> web.Response:
        invoice = await self._engine.get(_id(request))
        done = await self._billing.collector.paid(invoice, datetime.now(UTC), reference=None, source="manual")
        return _json(done.as_json(admin=True))

    async def refund(self, request: web.Request) -> web.Response:
        body = await parse_body(request, RefundIn, self._limit)
        invoice = await self._engine.get(_id(request))
        amount = Decimal(body.amount)
        if body.kind == "refund":
            done = await self._billing.collector.refund(invoice, amount, body.reason, datetime.now(UTC))
        else:
            done = await self._engine.credit_note(invoice, amount, kind="credit", reason=body.reason)
        return _json(done.as_json(admin=True))

    async def account(self, request: web.Request) -> web.Response:
        await self._engine.check_tenant(request.match_info["tenant_id"])
        found = await self._engine.account(request.match_info["tenant_id"])
        return _json(_account_json(found))

    async def update_account(self, request: web.Request) -> web.Response:
        body = await parse_body(request, AccountIn, self._limit)
        found = await self._engine.set_account(request.match_info["tenant_id"], plan=body.plan,
                                               timezone=body.timezone, email=body.email)
        return _json(_account_json(found))

    async def card(self, request: web.Request) -> web.Response:
        body = await parse_body(request, CardIn, self._limit)
        account = await self._billing.cards.replace(request.match_info["tenant_id"], body.payment_method)
        return _json(_account_json(account))

    async def credit(self, request: web.Request) -> web.Response:
        body = await parse_body(request, CreditIn, self._limit)
        credit = await self._engine.add_credit(body.tenant, Decimal(body.amount), body.reason)
        return _json({"object": "credit", "id": credit.id, "tenant": credit.tenant, "amount": text(credit.amount),
                      "remaining": text(credit.remaining), "reason": credit.reason}, status=201)

    async def plans(self, request: web.Request) -> web.Response:
        await self._engine.refresh_plans()
        book = self._engine.plans
        return _json({"object": "list", "data": [
            {"name": name, "versions": [{"effective": p.effective.isoformat(), "flat_fee": text(p.flat_fee),
                                         "minimum": text(p.minimum), "included_tokens": p.included_tokens,
                                         "prices": {m: {d: str(v) for d, v in ds.items()} for m, ds in p.prices.items()},
                                         "tiers": p.tiers.model_dump(mode="json") if p.tiers else None}
                                        for p in book.versions(name)]} for name in book.names()]})

    async def add_plan_version(self, request: web.Request) -> web.Response:
        name = request.match_info["plan"]
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", name):
            raise InvalidRequest("A plan name is 1 to 64 lowercase letters, digits, '-' or '_'", param="plan",
                                 code="invalid_value")
        raw = await read_body(request, self._limit)
        try:
            version = PlanVersion.model_validate_json(raw)
        except ValueError as exc:
            raise InvalidRequest(f"Invalid plan version: {str(exc).splitlines()[0]}", code="invalid_value") from None
        await self._engine.add_plan_version(name, version)
        return _json({"object": "plan.version", "plan": name}, status=201)

    async def reconcile(self, request: web.Request) -> web.Response:
        found = await self._billing.reconciler.reconcile(request.query.get("tenant"))
        return _json({"object": "reconciliation", "differences": [d.as_json() for d in found]})

    async def margins(self, request: web.Request) -> web.Response:
        rows = await margins(self._engine, _instant(request.query.get("at"), "at"), request.query.get("tenant"))
        return _json({"object": "list", "data": rows})

    async def log(self, request: web.Request) -> web.Response:
        rows = await self._engine.store.log_entries(request.query.get("tenant"), _limit(request))
        return _json({"object": "list", "data": list(rows)})


def _pdf(invoice: Invoice) -> bytes:
    try:
        from inferlab.billing.render import invoice_pdf

        return invoice_pdf(invoice)
    except ImportError:
        raise PdfUnavailable("PDF invoices need fpdf2: pip install 'inferlab[pdf]'") from None


class PdfUnavailable(InferLabError):
    status = 501
    error_type = "not_implemented"
    default_code = "pdf_unavailable"


def _account_json(account: Any) -> dict[str, Any]:
    return {"object": "billing.account", "tenant": account.tenant, "plan": account.plan,
            "timezone": account.timezone, "email": account.email, "has_customer": account.provider_customer is not None}
