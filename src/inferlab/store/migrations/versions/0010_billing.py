"""billing: accounts, stored plan versions, invoices, credits and credit notes, payments, webhook
events and the billing log

Money is NUMERIC(20, 10) on PostgreSQL and an integer count of 10^-10 USD on SQLite
(``store.models.Fixed``).

Revision ID: 0010_billing
Revises: 0009_batches
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010_billing"
down_revision = "0009_batches"
branch_labels = None
depends_on = None


def _money() -> sa.types.TypeEngine[Any]:
    if op.get_context().dialect.name == "sqlite":
        return sa.BigInteger()
    return sa.Numeric(20, 10)


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("email", sa.String(256), nullable=True),
        sa.Column("provider_customer", sa.String(128), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("tenant", name="pk_billing_accounts"),
    )
    op.create_table(
        "billing_plans",
        sa.Column("name", sa.String(64), nullable=False),
        _when("effective"),
        sa.Column("spec", sa.JSON(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("name", "effective", name="pk_billing_plans"),
    )
    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.String(96), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        _when("period_start"),
        _when("period_end"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("subtotal", _money(), nullable=False),
        sa.Column("credits_applied", _money(), nullable=False),
        sa.Column("amount_paid", _money(), nullable=False),
        sa.Column("amount_refunded", _money(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("finalized_at", True),
        _when("paid_at", True),
        _when("voided_at", True),
        sa.Column("provider_ref", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("next_attempt_at", True),
        sa.Column("dunning", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_invoices"),
        sa.UniqueConstraint("tenant", "period_start", name="uq_billing_invoices_tenant_period"),
    )
    op.create_index("ix_billing_invoices_state_next", "billing_invoices", ["state", "next_attempt_at"])
    op.create_table(
        "billing_credits",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("remaining", _money(), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_billing_credits"),
    )
    op.create_index("ix_billing_credits_tenant", "billing_credits", ["tenant"])
    op.create_table(
        "billing_credit_uses",
        sa.Column("invoice_id", sa.String(96), nullable=False),
        sa.Column("credit_id", sa.String(32), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "credit_id", name="pk_billing_credit_uses"),
    )
    op.create_table(
        "billing_credit_notes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(96), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_billing_credit_notes"),
    )
    op.create_index("ix_billing_credit_notes_invoice_id", "billing_credit_notes", ["invoice_id"])
    op.create_table(
        "billing_payments",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("invoice_id", sa.String(96), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=True),
        sa.Column("error", sa.String(256), nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("key", name="pk_billing_payments"),
    )
    op.create_index("ix_billing_payments_invoice_id", "billing_payments", ["invoice_id"])
    op.create_table(
        "billing_webhook_events",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _when("received_at"),
        _when("processed_at", True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_billing_webhook_events"),
    )
    op.create_index("ix_billing_webhook_events_processed_at", "billing_webhook_events", ["processed_at"])
    op.create_table(
        "billing_log",
        sa.Column("id", sa.String(32), nullable=False),
        _when("created_at"),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("invoice_id", sa.String(96), nullable=True),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_log"),
    )
    op.create_index("ix_billing_log_tenant_id", "billing_log", ["tenant", "id"])


def downgrade() -> None:
    for table in ("billing_log", "billing_webhook_events", "billing_payments", "billing_credit_notes",
                  "billing_credit_uses", "billing_credits", "billing_invoices", "billing_plans", "billing_accounts"):
        op.drop_table(table)
