"""``SqlUsageAnalytics``: ``UsageAnalytics`` over the store's rollups (SQLite and PostgreSQL).

A query reads ``usage_daily`` (or ``usage_hourly`` when grouped by hour): one indexed range per
tenant (the primary key starts with tenant, bucket), grouped by the asked dimensions in SQL, so a
month of one tenant is a few thousand rollup rows whatever the number of events behind them. The
sums come back exact: NUMERIC on PostgreSQL, integer counts of 10⁻¹⁰ USD on SQLite
(``store.models.Fixed``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from inferlab.metering.analytics import COLUMN, UsageQuery, UsageRow, bucket_label, sort_rows
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import Money, UsageDailyRow, UsageHourlyRow
from inferlab.store.usage_rollup import UsageSums

SUMS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens")


def rollup_select(query: UsageQuery) -> Select[Any]:
    table: Any = UsageHourlyRow if query.grain == "hour" else UsageDailyRow
    dims = [getattr(table, COLUMN[d]).label(d) for d in query.group_by]
    sums = [func.coalesce(func.sum(getattr(table, name)), 0).label(name) for name in SUMS]
    money = [func.coalesce(func.sum(getattr(table, name)), 0).label(name) for name in ("price", "hardware_cost")]
    for label in money:
        label.type = Money()  # read back as Decimal through the column's own type (SQLite: scaled integers)
    statement = select(*dims, *sums, *money).where(table.bucket >= query.start_at, table.bucket < query.end_at)
    for column, values in query.filters().items():
        statement = statement.where(getattr(table, column).in_(values))
    if dims:
        statement = statement.group_by(*dims)
    return statement


class SqlUsageAnalytics:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        async with self._db.sessions() as session:
            result = (await session.execute(rollup_select(query))).all()
        dims = query.group_by
        width = len(dims)
        labels: dict[object, str] = {}  # a bucket's label, computed once per bucket
        timed = [d in ("day", "hour") for d in dims]
        rows = []
        for found in result:
            requests, prompt, completion, cached, price, hardware = found[width:]
            if not requests:
                continue  # no usage at all (an ungrouped query over nothing)
            group = []
            for index, dim in enumerate(dims):
                value = found[index]
                if timed[index]:
                    label = labels.get(value)
                    if label is None:
                        label = labels[value] = bucket_label(dim, value)
                    value = label
                group.append((dim, value))
            rows.append(UsageRow(tuple(group), UsageSums(int(requests), int(prompt), int(completion), int(cached),
                                                           price, hardware)))
        return sort_rows(rows)
