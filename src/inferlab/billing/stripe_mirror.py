"""How an invoice looks at a payment provider: its lines in cents (shared by the Stripe adapter and
reconciliation, which must not import the SDK)."""

from __future__ import annotations

from inferlab.billing.invoice import Invoice
from inferlab.billing.money import minor_units


def mirrored_lines(invoice: Invoice) -> list[tuple[str, int]]:
    """The lines as Stripe holds them: (description, cents), credits as a negative line."""
    lines = [(line.description, minor_units(line.amount)) for line in invoice.lines if line.amount]
    if invoice.credits_applied:
        lines.append(("credits applied", -minor_units(invoice.credits_applied)))
    return lines
