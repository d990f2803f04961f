"""Usage reports: their filters (parsed the same way for the HTTP routes and the CLI) and their
rendering as JSON or CSV.

A tenant's report (``GET /v1/usage``) groups by day, model and key and shows what the tenant is
billed; an admin report (``GET /admin/usage``, ``inferlab usage report``) may group by any
dimension and filter by tenant, and adds the hardware cost and the margin. Money is a decimal
string (USD), never a float. The tenant of a tenant's report is the authenticated caller's: the
filters parsed here for that audience have no tenant field at all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from inferlab.errors import InvalidRequest
from inferlab.metering.analytics import DIMENSIONS, Dimension, UsageQuery, UsageRow
from inferlab.store.usage_rollup import UsageSums

Audience = Literal["tenant", "admin"]
Format = Literal["json", "csv"]
TENANT_DIMENSIONS: tuple[Dimension, ...] = ("day", "model", "key")
MAX_DAYS = 366
MAX_HOURLY_DAYS = 31
FILTERS: dict[Audience, tuple[str, ...]] = {
    "tenant": ("model", "key"),
    "admin": ("tenant", "model", "key", "tier", "replica", "status"),
}


@dataclass(frozen=True)
class ReportRequest:
    query: UsageQuery
    format: Format


def _date(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date (YYYY-MM-DD)", param=name, code="invalid_value") from None


def _values(raw: str | None, name: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",")))
    if len(values) > 100 or any(len(v) > 256 for v in values):
        raise InvalidRequest(f"{name}: at most 100 values of 256 characters", param=name, code="invalid_value")
    return values


def parse_report(params: Mapping[str, str], audience: Audience, today: date | None = None) -> ReportRequest:
    """``start``/``end`` (dates, ``end`` inclusive; default: this month so far), ``group_by``
    (comma-separated dimensions), the audience's filters (comma-separated values) and ``format``."""
    allowed = TENANT_DIMENSIONS if audience == "tenant" else DIMENSIONS
    known = {"start", "end", "group_by", "format", *FILTERS[audience]}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidRequest(f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}",
                             param=unknown[0], code="unknown_parameter")
    today = today or datetime.now(UTC).date()
    start = _date(params.get("start"), "start") or today.replace(day=1)
    last = _date(params.get("end"), "end") or today
    if last < start:
        raise InvalidRequest("end is before start", param="end", code="invalid_value")
    group_by = _values(params.get("group_by"), "group_by")
    dims: tuple[Dimension, ...] = ("day",) if group_by is None else tuple(g for g in group_by if g)  # type: ignore[misc]
    if bad := [d for d in dims if d not in allowed]:
        raise InvalidRequest(f"group_by: {bad[0]!r} is not one of {', '.join(allowed)}", param="group_by",
                             code="invalid_value")
    span = (last - start).days + 1
    if span > (MAX_HOURLY_DAYS if "hour" in dims else MAX_DAYS):
        limit = MAX_HOURLY_DAYS if "hour" in dims else MAX_DAYS
        raise InvalidRequest(f"a report covers at most {limit} days{' by hour' if 'hour' in dims else ''}",
                             param="start", code="invalid_value")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("format must be json or csv", param="format", code="invalid_value")
    filters = {name: _values(params.get(name), name) for name in FILTERS[audience]}
    try:
        query = UsageQuery(start, last + timedelta(days=1), dims, tenants=filters.get("tenant"),
                           models=filters.get("model"), keys=filters.get("key"), tiers=filters.get("tier"),
                           replicas=filters.get("replica"), statuses=filters.get("status"))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="group_by", code="invalid_value") from None
    return ReportRequest(query, fmt)  # type: ignore[arg-type]


def _sums(totals: UsageSums, audience: Audience) -> dict[str, Any]:
    found: dict[str, Any] = {
        "requests": totals.requests, "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens, "cached_tokens": totals.cached_tokens,
        "total_tokens": totals.total_tokens, "price_usd": str(totals.price.normalize()) if totals.price else "0",
    }
    if audience == "admin":
        found["hardware_cost_usd"] = str(totals.hardware_cost.normalize()) if totals.hardware_cost else "0"
        found["margin_usd"] = str(totals.margin.normalize()) if totals.margin else "0"
    return found


def report_json(rows: Sequence[UsageRow], query: UsageQuery, audience: Audience, *,
                tenant: str | None = None) -> dict[str, Any]:
    total = UsageSums()
    for row in rows:
        total.merge(row.totals)
    body: dict[str, Any] = {"object": "usage.report"}
    if tenant is not None:
        body["tenant"] = tenant
    body.update({"start": query.start.isoformat(), "end": (query.end - timedelta(days=1)).isoformat(),
                 "group_by": list(query.group_by),
                 "data": [{**dict(row.group), **_sums(row.totals, audience)} for row in rows],
                 "totals": _sums(total, audience)})
    return body


def report_csv(rows: Sequence[UsageRow], query: UsageQuery, audience: Audience) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sums = list(_sums(UsageSums(), audience))
    writer.writerow([*query.group_by, *sums])
    for row in rows:
        values = _sums(row.totals, audience)
        writer.writerow([*(_cell(v) for _, v in row.group), *(values[name] for name in sums)])
    return out.getvalue()


def _cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (a model or key name is user data)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
