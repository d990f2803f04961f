"""Usage as the pages show it: one rollup query, folded into the tables and charts of a page.

The query and the totals are the API's own (``parse_report``, ``report_json``, ``report_csv``), so
a page, ``GET /v1/usage`` (or ``/admin/usage``) and the CSV export agree to the last token and cent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from inferlab.metering.analytics import Dimension, UsageAnalytics, UsageQuery, UsageRow, days
from inferlab.metering.report import Audience, parse_report, report_csv, report_json
from inferlab.store.usage_rollup import UsageSums
from inferlab.web.cache import CachedAnalytics

PAGE_PARAMS = ("start", "end", "model", "key", "tenant")


@dataclass(frozen=True)
class UsageView:
    query: UsageQuery
    report: dict[str, Any]  # report_json: the API's body for the same query
    folds: dict[str, list[dict[str, Any]]]  # per dimension: its values' sums, largest first
    chart: dict[str, list[Any]]  # x: days, y series per day


def page_query(params: Mapping[str, str], audience: Audience, group_by: tuple[Dimension, ...],
               tenant: str | None) -> UsageQuery:
    """The page's filters parsed exactly as the API parses them (bad input: ``InvalidRequest``)."""
    allowed = ("start", "end", "model", "key") + (("tenant",) if audience == "admin" else ())
    picked = {name: value for name, value in params.items() if name in allowed and value != ""}
    query = parse_report(picked, audience).query
    query = replace(query, group_by=group_by)
    return replace(query, tenants=(tenant,)) if tenant is not None else query


def _fold(rows: Sequence[UsageRow], dimension: Dimension, audience: Audience) -> list[dict[str, Any]]:
    sums: dict[str, UsageSums] = {}
    for row in rows:
        sums.setdefault(row.value(dimension), UsageSums()).merge(row.totals)
    folded = [{"name": name, "requests": s.requests, "tokens": s.total_tokens, "price": s.price,
               "hardware_cost": s.hardware_cost if audience == "admin" else None,
               "margin": s.margin if audience == "admin" else None} for name, s in sums.items()]
    return sorted(folded, key=lambda item: (-item["tokens"], item["name"]))


def _chart(rows: Sequence[UsageRow], query: UsageQuery) -> dict[str, list[Any]]:
    per_day: dict[str, UsageSums] = {}
    for row in rows:
        per_day.setdefault(row.value("day"), UsageSums()).merge(row.totals)
    span = days(query.start, query.end)
    return {"x": [d.isoformat() for d in span],
            "tokens": [per_day[d.isoformat()].total_tokens if d.isoformat() in per_day else 0 for d in span],
            "requests": [per_day[d.isoformat()].requests if d.isoformat() in per_day else 0 for d in span]}


async def usage_view(analytics: UsageAnalytics | CachedAnalytics, query: UsageQuery, audience: Audience,
                     tenant: str | None) -> UsageView:
    """One query; a second (by day, for the chart) when ``query`` is not grouped by day."""
    rows = await analytics.usage(query)
    folds: dict[str, list[dict[str, Any]]] = {dim: _fold(rows, dim, audience) for dim in query.group_by if dim != "day"}
    by_day = rows if "day" in query.group_by else await analytics.usage(replace(query, group_by=("day",)))
    return UsageView(query, report_json(rows, query, audience, tenant=tenant), folds, _chart(by_day, query))


async def usage_csv(analytics: UsageAnalytics, query: UsageQuery, audience: Audience) -> tuple[str, str]:
    """The export: the API's CSV of the same query, and its file name."""
    rows = await analytics.usage(query)
    return report_csv(rows, query, audience), f"usage-{query.start.isoformat()}.csv"


def last_days(today: date, count: int) -> UsageQuery:
    return UsageQuery(today - timedelta(days=count - 1), today + timedelta(days=1), ("day", "status"))
