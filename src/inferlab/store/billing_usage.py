"""``SqlBillingUsage``: the token sums billing rates, read from the usage ledger.

Whole UTC hours come from the hourly rollups (``usage_hourly``, maintained with the events in one
transaction); the parts of an interval that do not cover a whole hour — a period boundary in a
half-hour time zone, a price change at 10:30 — from the raw events. The sums are the same either
way: the rollups are sums of the same events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from inferlab.billing.protocol import CostRow
from inferlab.billing.rating import Tokens
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import UsageEventRow, UsageHourlyRow

HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def split(start: datetime, end: datetime) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """``[start, end)`` as whole hours (for the rollups) and the parts left over (for the events)."""
    first, last = ceil_hour(start), floor_hour(end)
    if first >= last:
        return None, [(start, end)] if start < end else []
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), edges


class SqlBillingUsage:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def tokens(self, tenant: str, start: datetime, end: datetime) -> dict[tuple[str, str], Tokens]:
        hours, edges = split(start, end)
        found: dict[tuple[str, str], Tokens] = {}
        async with self._db.sessions() as session:
            queries: list[Any] = []
            if hours is not None:
                h = UsageHourlyRow
                queries.append(select(h.model, h.tier, func.sum(h.prompt_tokens), func.sum(h.completion_tokens),
                                      func.sum(h.cached_tokens))
                               .where(h.tenant == tenant, h.bucket >= hours[0], h.bucket < hours[1])
                               .group_by(h.model, h.tier))
            e = UsageEventRow
            for a, b in edges:
                queries.append(select(e.model, e.tier, func.sum(e.prompt_tokens), func.sum(e.completion_tokens),
                                      func.sum(e.cached_tokens))
                               .where(e.tenant == tenant, e.time >= a, e.time < b).group_by(e.model, e.tier))
            for query in queries:
                for model, tier, prompt, completion, cached in (await session.execute(query)).all():
                    tokens = found.setdefault((model, tier), Tokens())
                    tokens.add(int(prompt or 0), int(completion or 0), int(cached or 0))
        return found

    @bounded
    async def tenants(self, start: datetime, end: datetime) -> Sequence[str]:
        h = UsageHourlyRow
        query = (select(h.tenant).where(h.bucket >= floor_hour(start), h.bucket < ceil_hour(end))
                 .group_by(h.tenant).order_by(h.tenant))
        async with self._db.sessions() as session:
            return list(await session.scalars(query))

    @bounded
    async def costs(self, tenant: str | None, start: datetime, end: datetime) -> Sequence[CostRow]:
        """List price and hardware cost per tenant and model, from the hourly rollups (whole hours
        of ``[start, end)``: the costing job writes hardware cost to the rollups hour by hour)."""
        h = UsageHourlyRow
        query = (select(h.tenant, h.model, func.sum(h.price), func.sum(h.hardware_cost),
                        func.sum(h.prompt_tokens + h.completion_tokens))
                 .where(h.bucket >= floor_hour(start), h.bucket < ceil_hour(end)).group_by(h.tenant, h.model)
                 .order_by(h.tenant, h.model))
        if tenant is not None:
            query = query.where(h.tenant == tenant)
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [CostRow(t, m, _money(price), _money(hardware), int(tokens or 0)) for t, m, price, hardware, tokens in rows]


def _money(value: Any) -> Decimal:
    """A SUM over a ``Money`` column, already a ``Decimal`` (the sum keeps the column's type)."""
    return Decimal(0) if value is None else Decimal(value)
