"""The invoice, its states and the rules between them.

    draft ──finalize──▶ finalized ──pay──▶ paid
      │                    ├──void──▶ void
      └──(re-rated freely) └──mark uncollectible──▶ uncollectible ──pay──▶ paid

A draft is re-rated as usage arrives (late events within the grace window land on it). Finalizing
freezes the lines and applies the tenant's credits, once; after that the lines never change —
usage that arrives later is an ``adjustment`` line on the next invoice. A paid invoice may be
refunded or credited (credit notes), never for more than was paid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from inferlab.billing.money import ZERO, text
from inferlab.billing.rating import Line

InvoiceState = Literal["draft", "finalized", "paid", "void", "uncollectible"]
DunningState = Literal["none", "retrying", "suspended", "resolved"]
STATES: tuple[InvoiceState, ...] = ("draft", "finalized", "paid", "void", "uncollectible")
TRANSITIONS: Mapping[InvoiceState, frozenset[InvoiceState]] = {
    "draft": frozenset({"finalized"}),
    "finalized": frozenset({"paid", "void", "uncollectible"}),
    "uncollectible": frozenset({"paid", "void"}),
    "paid": frozenset(),
    "void": frozenset(),
}
OPEN: frozenset[InvoiceState] = frozenset({"finalized", "uncollectible"})  # owed, not paid


def invoice_id(tenant: str, period_key: str) -> str:
    """Deterministic per (tenant, period): drafting twice finds the same invoice."""
    return f"inv_{tenant}_{period_key}"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    tenant: str
    period_start: datetime
    period_end: datetime
    state: InvoiceState
    currency: str
    plan: str
    lines: tuple[Line, ...]
    created_at: datetime
    credits_applied: Decimal = ZERO
    amount_paid: Decimal = ZERO
    amount_refunded: Decimal = ZERO
    finalized_at: datetime | None = None
    paid_at: datetime | None = None
    voided_at: datetime | None = None
    provider_ref: str | None = None  # the payment provider's invoice id
    attempts: int = 0  # payment attempts made
    next_attempt_at: datetime | None = None
    dunning: DunningState = "none"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        """What the tenant owes: the lines less the credits applied (never below zero)."""
        return self.subtotal - self.credits_applied

    @property
    def amount_due(self) -> Decimal:
        return ZERO if self.state in ("paid", "void", "draft") else self.total - self.amount_paid

    def as_json(self, *, admin: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "invoice", "id": self.id, "tenant": self.tenant, "status": self.state,
            "currency": self.currency, "plan": self.plan,
            "period_start": self.period_start.isoformat(), "period_end": self.period_end.isoformat(),
            "subtotal": text(self.subtotal), "credits_applied": text(self.credits_applied),
            "total": text(self.total), "amount_paid": text(self.amount_paid),
            "amount_refunded": text(self.amount_refunded), "amount_due": text(self.amount_due),
            "created_at": self.created_at.isoformat(),
            "finalized_at": self.finalized_at.isoformat() if self.finalized_at else None,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "lines": [line.as_json() for line in self.lines],
        }
        if admin:
            body.update({"provider_ref": self.provider_ref, "attempts": self.attempts, "dunning": self.dunning,
                         "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None})
        return body


def can_move(before: InvoiceState, after: InvoiceState) -> bool:
    return after in TRANSITIONS[before]


def lines_json(lines: Sequence[Line]) -> list[dict[str, Any]]:
    return [line.as_json() for line in lines]
