"""PostgreSQL's monthly partitions of ``usage_events``: their names, bounds and DDL.

The parent is created by the migration (``PARTITION BY RANGE (time)``); a child per month,
``usage_events_pYYYYMM`` holding [first of the month, first of the next) UTC, is created on demand
by the usage store before it inserts events of that month (and ahead, for the current and next
month, when it starts). There is no default partition: an event always lands in its month's.

The children are not in the models: Alembic's comparison skips them (``include_name``), so the
models-vs-migrations drift check still covers the parent.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PARENT = "usage_events"
_CHILD = re.compile(r"^usage_events_p\d{6}$")
LOCK_KEY = zlib.crc32(b"inferlab:usage_events:partitions") - 2**31


def month_of(moment: datetime) -> datetime:
    """The first instant of ``moment``'s month, UTC."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month.year:04d}{month.month:02d}"


def is_partition(name: str | None) -> bool:
    return name is not None and _CHILD.match(name) is not None


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's filter: every name but the monthly children (which the models do not list)."""
    return not (type_ == "table" and is_partition(name))


async def create_partition(connection: AsyncConnection, month: datetime) -> None:
    """Create ``month``'s child unless it exists, serialised across gateways by an advisory lock
    (two concurrent ``CREATE TABLE IF NOT EXISTS`` may otherwise both try, and one fail)."""
    start, end = month_of(month), next_month(month_of(month))
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    await connection.execute(text(
        f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF {PARENT} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    ))
