"""usage: the usage events (PostgreSQL: partitioned by month) and their hourly and daily rollups

Revision ID: 0006_usage
Revises: 0005_reservations
Create Date: 2026-12-04

Money is NUMERIC(20, 10) on PostgreSQL and an integer count of 10^-10 USD on SQLite (whose NUMERIC
is a float); milliseconds NUMERIC(18, 3) / an integer count of microseconds (``store.models.Fixed``).
The monthly children of ``usage_events`` are created on demand (``store/partitions.py``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_usage"
down_revision = "0005_reservations"
branch_labels = None
depends_on = None


def _fixed(precision: int, scale: int) -> sa.types.TypeEngine[Any]:
    if op.get_context().dialect.name == "sqlite":
        return sa.BigInteger()
    return sa.Numeric(precision, scale)


def _rollup(name: str) -> None:
    op.create_table(
        name,
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("replica", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("price", _fixed(20, 10), nullable=False),
        sa.Column("hardware_cost", _fixed(20, 10), nullable=False),
        sa.Column("duration_ms", _fixed(18, 3), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket", "tier", "model", "key_id", "replica", "status", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_bucket", name, ["bucket"])


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("replica", sa.String(256), nullable=True),
        sa.Column("hardware", sa.String(128), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("token_source", sa.String(16), nullable=False),
        sa.Column("queue_ms", _fixed(18, 3), nullable=True),
        sa.Column("ttft_ms", _fixed(18, 3), nullable=True),
        sa.Column("duration_ms", _fixed(18, 3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("price", _fixed(20, 10), nullable=False),
        sa.Column("hardware_cost", _fixed(20, 10), nullable=False),
        sa.PrimaryKeyConstraint("id", "time", name="pk_usage_events"),
        postgresql_partition_by="RANGE (time)",
    )
    op.create_index("ix_usage_events_tenant_time", "usage_events", ["tenant", "time"])
    _rollup("usage_hourly")
    _rollup("usage_daily")


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("usage_hourly")
    op.drop_table("usage_events")  # PostgreSQL drops the monthly children with it
