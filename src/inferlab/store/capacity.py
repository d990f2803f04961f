"""``SqlDemandHistory``: every model's requests and tokens per hour, from the ``usage_hourly`` rollups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from inferlab.capacity.history import HourlyUsage
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import UsageHourlyRow


class SqlDemandHistory:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def hourly(self, start: datetime, end: datetime) -> list[HourlyUsage]:
        h = UsageHourlyRow
        query = (select(h.model, h.bucket, func.sum(h.requests), func.sum(h.prompt_tokens),
                        func.sum(h.completion_tokens))
                 .where(h.bucket >= start, h.bucket < end).group_by(h.model, h.bucket).order_by(h.bucket))
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [HourlyUsage(str(r[0]), r[1], int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows]
