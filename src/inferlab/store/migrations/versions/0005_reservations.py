"""reservations: time-boxed guarantees of a pool's capacity for a tenant

Revision ID: 0005_reservations
Revises: 0004_tenants
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reservations"
down_revision = "0004_tenants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("sequences", sa.Integer(), nullable=False),
        sa.Column("kv_tokens", sa.BigInteger(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
    )
    op.create_index("ix_reservations_pool_end", "reservations", ["pool", "end_at"])


def downgrade() -> None:
    op.drop_table("reservations")
