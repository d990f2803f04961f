"""Usage reports and forecasts: ``GET /v1/usage`` and ``/v1/usage/forecast`` (the caller's own
tenant) and ``GET /admin/usage`` and ``/admin/usage/forecast`` (platform admins: any tenant).

The tenant of ``/v1/usage`` is the authenticated caller's, taken from the principal the auth
middleware found (without authentication: the default tenant); no parameter can name another
(``tenant`` is an unknown parameter there, a 400). Reports are read from the rollups through
``UsageAnalytics`` (``inferlab.metering.report`` parses and renders them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import orjson
from aiohttp import web

from inferlab.api.auth import PRINCIPAL
from inferlab.api.routes import Param, RouteSpec, add_routes
from inferlab.auth.policy import INFERENCE, PLATFORM_ADMIN
from inferlab.errors import InvalidRequest
from inferlab.metering.analytics import UsageAnalytics
from inferlab.metering.forecast import Forecaster
from inferlab.metering.report import Audience, ReportRequest, parse_report, report_csv, report_json

RANGE = (Param("start", "first day (YYYY-MM-DD, UTC); default: the first of this month"),
         Param("end", "last day, included; default: today"),
         Param("format", "json (default) or csv", schema={"enum": ["json", "csv"]}))
TENANT_PARAMS = (*RANGE, Param("group_by", "comma-separated: day, model, key (default: day)"),
                 Param("model", "only these models (comma-separated)"), Param("key", "only these key ids"))
ADMIN_PARAMS = (*RANGE, Param("group_by", "comma-separated: day, hour, tenant, tier, model, key, replica, status"),
                *(Param(name, f"only these {name} values (comma-separated)")
                  for name in ("tenant", "model", "key", "tier", "replica", "status")))


def _tenant(request: web.Request) -> str:
    principal = request.get(PRINCIPAL)
    return principal.tenant_id if principal is not None else "default"


class UsageRoutes:
    def __init__(self, analytics: UsageAnalytics, forecaster: Forecaster, *, admin: bool) -> None:
        self._analytics = analytics
        self._forecaster = forecaster
        self._admin = admin

    def routes(self) -> list[RouteSpec]:
        usage = ("usage",)
        found = [
            RouteSpec("GET", "/v1/usage", self.tenant_usage, INFERENCE,
                      "Your tenant's usage by day, model and key (JSON or CSV)", usage, params=TENANT_PARAMS,
                      errors=(400,)),
            RouteSpec("GET", "/v1/usage/forecast", self.tenant_forecast, INFERENCE,
                      "Your tenant's month-end tokens and spend, forecast with a 95 % interval", usage),
        ]
        if self._admin:
            found += [
                RouteSpec("GET", "/admin/usage", self.admin_usage, PLATFORM_ADMIN,
                          "Usage of any tenant, by tenant, tier, model, key, replica, status, day or hour, with "
                          "hardware cost and margin", usage, params=ADMIN_PARAMS, errors=(400,)),
                RouteSpec("GET", "/admin/usage/forecast", self.admin_forecast, PLATFORM_ADMIN,
                          "Every tenant's (or one's) month-end forecast", usage,
                          params=(Param("tenant", "only these tenants (comma-separated)"),), errors=(400,)),
            ]
        return found

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    async def _report(self, request: web.Request, audience: Audience, tenant: str | None) -> web.Response:
        parsed: ReportRequest = parse_report(request.query, audience)
        query = parsed.query
        if tenant is not None:  # the caller's own tenant: the only one a tenant's report can name
            query = replace(query, tenants=(tenant,))
        rows = await self._analytics.usage(query)
        if parsed.format == "csv":
            name = f"usage-{query.start.isoformat()}.csv"
            return web.Response(text=report_csv(rows, query, audience), content_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return _json(report_json(rows, query, audience, tenant=tenant))

    async def tenant_usage(self, request: web.Request) -> web.Response:
        return await self._report(request, "tenant", _tenant(request))

    async def admin_usage(self, request: web.Request) -> web.Response:
        return await self._report(request, "admin", None)

    async def tenant_forecast(self, request: web.Request) -> web.Response:
        if request.query:
            raise InvalidRequest("this route takes no parameters", param=next(iter(request.query)),
                                 code="unknown_parameter")
        [found] = await self._forecaster.forecast(_today(), (_tenant(request),))
        return _json(found.as_json())

    async def admin_forecast(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"tenant"})
        if unknown:
            raise InvalidRequest(f"unknown parameter {unknown[0]!r}", param=unknown[0], code="unknown_parameter")
        raw = request.query.get("tenant")
        tenants = tuple(t for t in raw.split(",") if t) if raw is not None else None
        found = await self._forecaster.forecast(_today(), tenants)
        return _json({"object": "list", "data": [f.as_json() for f in found]})


def _today() -> date:
    return datetime.now(UTC).date()


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
