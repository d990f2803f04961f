"""usage costs and alerts: hardware-cost intervals already costed, budget alerts claimed or sent,
and the (replica, time) index the cost job reads events by

Revision ID: 0007_usage_costs_alerts
Revises: 0006_usage
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_usage_costs_alerts"
down_revision = "0006_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_cost_intervals",
        sa.Column("replica", sa.String(256), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("busy_us", sa.BigInteger(), nullable=False),
        sa.Column("quanta", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("costed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica", "start", name="pk_usage_cost_intervals"),
    )
    op.create_index("ix_usage_cost_intervals_start", "usage_cost_intervals", ["start"])
    op.create_index("ix_usage_events_replica_time", "usage_events", ["replica", "time"])
    op.create_table(
        "budget_alerts",
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_budget_alerts"),
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_index("ix_usage_events_replica_time", "usage_events")
    op.drop_table("usage_cost_intervals")
