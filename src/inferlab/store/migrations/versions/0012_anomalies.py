"""anomalies: incidents of the anomaly detector; usage_events indexed on time for its windows

Revision ID: 0012_anomalies
Revises: 0011_registry
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_anomalies"
down_revision = "0011_registry"
branch_labels = None
depends_on = None

OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "anomaly_incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.Column("peak", sa.JSON(), nullable=False),
        sa.Column("latest", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_anomaly_incidents"),
    )
    op.create_index("ix_anomaly_incidents_open_key", "anomaly_incidents", ["key"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_anomaly_incidents_opened_at", "anomaly_incidents", ["opened_at"])
    op.create_index("ix_usage_events_time", "usage_events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_usage_events_time", table_name="usage_events")
    op.drop_index("ix_anomaly_incidents_opened_at", table_name="anomaly_incidents")
    op.drop_index("ix_anomaly_incidents_open_key", table_name="anomaly_incidents")
    op.drop_table("anomaly_incidents")
