"""tenants: tier, status and overrides per tenant; tiers added through the admin API

Revision ID: 0004_tenants
Revises: 0003_audit
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tenants"
down_revision = "0003_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("tier", sa.String(64), nullable=True))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("overrides", sa.JSON(), nullable=True))
    op.create_table(
        "tiers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_tiers"),
    )


def downgrade() -> None:
    op.drop_table("tiers")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("overrides")
        batch.drop_column("status")
        batch.drop_column("tier")
