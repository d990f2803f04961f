"""Reconciliation and economics.

``Reconciler.reconcile`` compares each invoice we mirrored with the provider's copy — lines to the
cent, total, paid or not — and reports every difference (it changes nothing). ``margins`` is the
revenue, hardware cost (metering's attribution, from the rollups) and margin per tenant and
model for the period holding an instant: revenue from the invoice's lines when it is finalized,
else rated now; fees, minimums and adjustments are revenue of no model (``*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from inferlab.billing.engine import BillingEngine
from inferlab.billing.invoice import Invoice, invoice_id
from inferlab.billing.money import ZERO, minor_units, text
from inferlab.billing.provider import PaymentProvider
from inferlab.billing.stripe_mirror import mirrored_lines

ANY = "*"


@dataclass(frozen=True, slots=True)
class Difference:
    invoice: str
    tenant: str
    field: str
    ours: str
    theirs: str

    def as_json(self) -> dict[str, str]:
        return {"invoice": self.invoice, "tenant": self.tenant, "field": self.field, "ours": self.ours,
                "theirs": self.theirs}


class Reconciler:
    def __init__(self, engine: BillingEngine, provider: PaymentProvider) -> None:
        self._engine = engine
        self._provider = provider

    async def _payment_ref(self, invoice: Invoice) -> str | None:
        payments = await self._engine.store.payments(invoice.id)
        done = [p for p in payments if p.state == "succeeded" and p.provider_ref]
        return done[-1].provider_ref if done else None

    async def reconcile(self, tenant: str | None = None, limit: int = 1000) -> list[Difference]:
        found: list[Difference] = []
        for invoice in await self._engine.store.invoices(tenant, states=["finalized", "paid", "uncollectible"],
                                                          limit=limit):
            if not invoice.provider_ref:
                continue
            theirs = await self._provider.fetch(invoice, await self._payment_ref(invoice))
            if theirs is None:
                if invoice.state == "paid" and invoice.amount_paid > 0:
                    found.append(Difference(invoice.id, invoice.tenant, "missing", "paid", "no copy"))
                continue
            ours_lines = tuple(mirrored_lines(invoice))
            if theirs.lines and theirs.lines != ours_lines:
                found.append(Difference(invoice.id, invoice.tenant, "lines", repr(ours_lines), repr(theirs.lines)))
            if theirs.total != minor_units(invoice.total):
                found.append(Difference(invoice.id, invoice.tenant, "total", str(minor_units(invoice.total)),
                                        str(theirs.total)))
            paid_here, paid_there = invoice.state == "paid", theirs.amount_paid > 0
            if paid_here != paid_there:
                found.append(Difference(invoice.id, invoice.tenant, "paid", invoice.state, theirs.status))
            elif paid_here and theirs.amount_paid != minor_units(invoice.amount_paid):
                found.append(Difference(invoice.id, invoice.tenant, "amount_paid",
                                        str(minor_units(invoice.amount_paid)), str(theirs.amount_paid)))
        return found


async def margins(engine: BillingEngine, moment: datetime, tenant: str | None = None) -> list[dict[str, Any]]:
    """Revenue, hardware cost and margin per tenant and model, for each tenant's period at ``moment``."""
    tenants = [tenant] if tenant is not None else sorted(
        {a.tenant for a in await engine.store.accounts()} | set(await engine.usage.tenants(moment, moment)) |
        set(await engine.usage.tenants(*_month_around(moment))))
    rows: list[dict[str, Any]] = []
    for name in tenants:
        period = await engine.period_of(name, moment)
        invoice = await engine.store.invoice(invoice_id(name, period.key))
        account = await engine.account(name)
        lines = list(invoice.lines) if invoice is not None and invoice.state != "draft" else \
            await engine.rate(name, period, account.plan)
        revenue: dict[str, Decimal] = {}
        for line in lines:
            revenue[line.model or ANY] = revenue.get(line.model or ANY, ZERO) + line.amount
        costs = {row.model: row for row in await engine.usage.costs(name, period.start, period.end)}
        for model in sorted(set(revenue) | set(costs)):
            cost = costs[model].hardware_cost if model in costs else ZERO
            listed = costs[model].price if model in costs else ZERO
            income = revenue.get(model, ZERO)
            rows.append({"tenant": name, "model": model, "period_start": period.start.isoformat(),
                         "period_end": period.end.isoformat(), "revenue_usd": text(income),
                         "list_price_usd": str(listed.normalize()) if listed else "0",
                         "hardware_cost_usd": str(cost.normalize()) if cost else "0",
                         "margin_usd": str((income - cost).normalize()) if income - cost else "0",
                         "tokens": costs[model].tokens if model in costs else 0})
    return rows



def _month_around(moment: datetime) -> tuple[datetime, datetime]:
    return moment - timedelta(days=32), moment + timedelta(days=32)
