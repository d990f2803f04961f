"""The dashboards' pages (``/ui``): the customer portal (any signed-in user, their own tenant) and
the operator's pages (platform admins). Each handler asks ``inferlab.web.pages`` for its page's
data — one or two reads from the services the API routes use — and renders its template.

Every route here has a session rule (``inferlab.auth.policy.UI_*``): the auth middleware has
resolved the session cookie to a principal, checked its CSRF token on POSTs and applied the rule's
group and role before a handler runs. Forms answer htmx with the fragment they replace, and a
browser without JavaScript with the whole page.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import orjson
from aiohttp import web

from inferlab.api.auth import PRINCIPAL
from inferlab.api.routes import RouteSpec, add_routes
from inferlab.api.web_session import ADMIN_NAV, SESSION, WebSessions, html
from inferlab.auth.admin import CreatedKey
from inferlab.auth.model import Principal
from inferlab.auth.policy import UI_ADMIN, UI_BILLING, UI_KEYS, UI_MEMBER
from inferlab.errors import InferLabError, InvalidRequest, NotFound
from inferlab.metering.analytics import Dimension
from inferlab.web.pages import ADMIN_GROUPS, AdminPages, PortalPages
from inferlab.web.render import Renderer
from inferlab.web.sources import Sources
from inferlab.web.usage_view import page_query, usage_csv

MAX_KEY_NAME = 100


def _is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


class WebRoutes:
    def __init__(self, sources: Sources, sessions: WebSessions, renderer: Renderer, *, refresh_s: int) -> None:
        self._sources = sources
        self._admin = AdminPages(sources)
        self._portal = PortalPages(sources)
        self._sessions = sessions
        self._renderer = renderer
        self._refresh_s = refresh_s

    def routes(self) -> list[RouteSpec]:
        tags = ("dashboards",)
        member = [("/ui/", self.portal_usage, "Your usage by day, model and key"),
                  ("/ui/usage.csv", self.portal_csv, "Your usage as CSV (the API's export)"),
                  ("/ui/spend", self.portal_spend, "Your spend against quotas, and the month-end forecast"),
                  ("/ui/billing", self.portal_billing, "Your invoices, newest first, and your billing account"),
                  ("/ui/billing/invoices/{invoice_id}", self.portal_invoice, "One of your invoices"),
                  ("/ui/billing/invoices/{invoice_id}/json", self.portal_invoice_json,
                   "One of your invoices as JSON (the API's), to download"),
                  ("/ui/billing/payment-method", self.payment_method, "Your card on file")]
        admin = [("/ui/admin/", self.overview, "Traffic, errors and TTFT per tier against the SLO"),
                 ("/ui/admin/models", self.models, "Models, registry versions and rollouts"),
                 ("/ui/admin/pools", self.pools, "Pools, replicas and autoscaler decisions"),
                 ("/ui/admin/pools/panel", self.pools_panel, "The replicas panel (htmx fragment)"),
                 ("/ui/admin/tenants", self.tenants, "Tenants"),
                 ("/ui/admin/users", self.users, "Users and keys"),
                 ("/ui/admin/limits", self.limits, "Tiers, limits and quotas"),
                 ("/ui/admin/usage", self.admin_usage, "Usage, cost and margin"),
                 ("/ui/admin/usage.csv", self.admin_csv, "Usage, cost and margin as CSV"),
                 ("/ui/admin/anomalies", self.anomalies, "Anomalies"),
                 ("/ui/admin/audit", self.audit, "The audit log")]
        return [
            *(RouteSpec("GET", path, handler, UI_MEMBER, summary, tags) for path, handler, summary in member),
            RouteSpec("GET", "/ui/keys", self.keys, UI_KEYS, "Your API keys", tags),
            RouteSpec("POST", "/ui/keys", self.create_key, UI_KEYS, "Create a key", tags),
            RouteSpec("POST", "/ui/billing/payment-method", self.set_payment_method, UI_BILLING,
                      "Replace your tenant's card (a tenant admin)", tags),
            RouteSpec("POST", "/ui/keys/{key_id}/rotate", self.rotate_key, UI_KEYS, "Rotate a key", tags),
            RouteSpec("POST", "/ui/keys/{key_id}/revoke", self.revoke_key, UI_KEYS, "Revoke a key", tags),
            *(RouteSpec("GET", path, handler, UI_ADMIN, summary, tags) for path, handler, summary in admin),
        ]

    def add_to(self, app: web.Application) -> list[RouteSpec]:
        return add_routes(app, self.routes())

    # ---- rendering ----------------------------------------------------------------------------
    def _context(self, request: web.Request, page: str, title: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"page": page, "title": title, "who": request[PRINCIPAL], "csrf": self._sessions.csrf_of(request),
                "admin_nav": ADMIN_NAV, "refresh_s": self._refresh_s, "error": None,
                "billing_on": self._sources.billing is not None, **data}

    def _render(self, request: web.Request, template: str, page: str, title: str, data: dict[str, Any],
                status: int = 200) -> web.Response:
        return html(self._renderer.render(template, self._context(request, page, title, data)), status)

    def _invalid(self, request: web.Request, page: str, title: str, exc: InvalidRequest,
                 region: str = "report") -> web.Response:
        """A form's bad input: the message in the region the form swaps (htmx swaps only 2xx answers;
        without htmx the status says 400)."""
        data = {"problem": exc.message, "region": region}
        body = self._renderer.render("error.html", self._context(request, page, title, data))
        return html(body, 200 if _is_htmx(request) else 400)

    # ---- the customer portal ------------------------------------------------------------------
    async def portal_usage(self, request: web.Request) -> web.Response:
        try:
            data = await self._portal.usage(request[PRINCIPAL], request.query)
        except InvalidRequest as exc:
            return self._invalid(request, "portal-usage", "Usage", exc)
        return self._render(request, "portal_usage.html", "portal-usage", "Usage", data)

    async def portal_csv(self, request: web.Request) -> web.Response:
        return await self._csv(request, "tenant", request[PRINCIPAL].tenant_id)

    async def _csv(self, request: web.Request, audience: Any, tenant: str | None) -> web.Response:
        analytics = self._sources.analytics
        if analytics is None:
            raise InvalidRequest("Metering is off: there is no usage to export", code="metering_off")
        group: tuple[Dimension, ...] = ("day", "model", "key") if audience == "tenant" else ADMIN_GROUPS
        body, name = await usage_csv(analytics, page_query(request.query, audience, group, tenant), audience)
        return web.Response(text=body, content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    async def portal_spend(self, request: web.Request) -> web.Response:
        data = await self._portal.spend(request[PRINCIPAL])
        return self._render(request, "portal_spend.html", "portal-spend", "Spend and quotas", data)

    async def portal_billing(self, request: web.Request) -> web.Response:
        data = await self._portal.invoices(request[PRINCIPAL])
        return self._render(request, "portal_billing.html", "portal-billing", "Invoices", data)

    async def portal_invoice(self, request: web.Request) -> web.Response:
        try:
            data = await self._portal.invoice(request[PRINCIPAL], request.match_info["invoice_id"])
        except NotFound as exc:  # another tenant's invoice is missing, exactly like a missing one
            body = self._renderer.render("error.html", self._context(request, "portal-billing", "Invoices",
                                                                     {"problem": exc.message, "region": "report"}))
            return html(body, 404)
        title = f"Invoice {data['invoice']['id']}"
        return self._render(request, "portal_invoice.html", "portal-billing", title, data)

    async def portal_invoice_json(self, request: web.Request) -> web.Response:
        invoice = await self._portal.invoice_json(request[PRINCIPAL], request.match_info["invoice_id"])
        return web.Response(body=orjson.dumps(invoice), content_type="application/json",
                            headers={"Content-Disposition": f'attachment; filename="{invoice["id"]}.json"',
                                     "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    async def _payment(self, request: web.Request, *, error: str | None = None, done: bool = False,
                       status: int = 200) -> web.Response:
        data = {**await self._portal.payment_method(request[PRINCIPAL]), "form_error": error, "done": done}
        return self._render(request, "portal_payment.html", "portal-payment", "Payment method", data, status)

    async def payment_method(self, request: web.Request) -> web.Response:
        return await self._payment(request)

    async def set_payment_method(self, request: web.Request) -> web.Response:
        cards = self._sources.cards
        if self._sources.billing is None or cards is None:
            return await self._payment(request, error="Billing is off on this platform.", status=400)
        form = await request.post()
        payment_method = str(form.get("payment_method", "")).strip()
        try:
            await cards.replace(request[PRINCIPAL].tenant_id, payment_method)
        except InferLabError as exc:  # bad input, no provider, or the provider refused the card
            return await self._payment(request, error=exc.message, status=exc.status)
        return await self._payment(request, done=True)

    # ---- keys -----------------------------------------------------------------------------------
    async def _keys(self, request: web.Request, *, created: CreatedKey | None = None, error: str | None = None,
                    status: int = 200) -> web.Response:
        actor: Principal = request[PRINCIPAL]
        data = {**await self._portal.keys(actor), "created": created, "form_error": error,
                "current_key": actor.key_id}
        if _is_htmx(request):
            body = self._renderer.render("_keys_table.html", self._context(request, "portal-keys", "API keys", data))
            return html(body, 200)
        return self._render(request, "portal_keys.html", "portal-keys", "API keys", data, status)

    async def keys(self, request: web.Request) -> web.Response:
        return await self._keys(request)

    async def create_key(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("name", "")).strip()
        if not 1 <= len(name) <= MAX_KEY_NAME:
            return await self._keys(request, error=f"A key's name is 1 to {MAX_KEY_NAME} characters.", status=400)
        expires_at = None
        raw = str(form.get("expires", "")).strip()
        if raw:
            try:
                expires_at = datetime.combine(datetime.fromisoformat(raw).date(), time(), UTC)
            except ValueError:
                return await self._keys(request, error="The expiry must be a date (YYYY-MM-DD).", status=400)
        try:
            created = await self._sources.identity.create_key(request[PRINCIPAL], name=name, expires_at=expires_at)
        except InferLabError as exc:
            return await self._keys(request, error=exc.message, status=exc.status)
        return await self._keys(request, created=created)

    async def _change_key(self, request: web.Request, action: str) -> web.Response:
        actor: Principal = request[PRINCIPAL]
        key_id = request.match_info["key_id"]
        if key_id == actor.key_id:
            return await self._keys(request, error="This session signed in with that key: use another session.",
                                    status=400)
        try:
            owned = await self._sources.identity.get_key(actor, key_id)
            if owned.user_id != actor.user_id:  # the portal manages the user's own keys only
                return await self._keys(request, error="No such key.", status=404)
            if action == "rotate":
                return await self._keys(request, created=await self._sources.identity.rotate_key(actor, key_id))
            await self._sources.identity.revoke_key(actor, key_id)
        except InferLabError as exc:
            return await self._keys(request, error=exc.message, status=exc.status)
        return await self._keys(request)

    async def rotate_key(self, request: web.Request) -> web.Response:
        return await self._change_key(request, "rotate")

    async def revoke_key(self, request: web.Request) -> web.Response:
        return await self._change_key(request, "revoke")

    # ---- the operator's pages -------------------------------------------------------------------
    async def overview(self, request: web.Request) -> web.Response:
        data = await self._admin.overview(request[PRINCIPAL])
        return self._render(request, "admin_overview.html", "admin-overview", "Overview", data)

    async def models(self, request: web.Request) -> web.Response:
        data = await self._admin.models(request[PRINCIPAL])
        return self._render(request, "admin_models.html", "admin-models", "Models and rollouts", data)

    async def pools(self, request: web.Request) -> web.Response:
        data = await self._admin.pools(request[PRINCIPAL])
        data["now"] = datetime.now(UTC).strftime("%H:%M:%S UTC")
        return self._render(request, "admin_pools.html", "admin-pools", "Pools and replicas", data)

    async def pools_panel(self, request: web.Request) -> web.Response:
        data = await self._admin.pools(request[PRINCIPAL])
        data["now"] = datetime.now(UTC).strftime("%H:%M:%S UTC")
        return html(self._renderer.render("_pools_panel.html", data))

    async def tenants(self, request: web.Request) -> web.Response:
        data = await self._admin.tenants(request[PRINCIPAL])
        return self._render(request, "admin_tenants.html", "admin-tenants", "Tenants", data)

    async def users(self, request: web.Request) -> web.Response:
        data = await self._admin.users(request[PRINCIPAL])
        return self._render(request, "admin_users.html", "admin-users", "Users and keys", data)

    async def limits(self, request: web.Request) -> web.Response:
        data = await self._admin.limits(request[PRINCIPAL])
        return self._render(request, "admin_limits.html", "admin-limits", "Limits and quotas", data)

    async def admin_usage(self, request: web.Request) -> web.Response:
        try:
            data = await self._admin.usage(request[PRINCIPAL], request.query)
        except InvalidRequest as exc:
            return self._invalid(request, "admin-usage", "Usage, cost and margin", exc)
        return self._render(request, "admin_usage.html", "admin-usage", "Usage, cost and margin", data)

    async def admin_csv(self, request: web.Request) -> web.Response:
        return await self._csv(request, "admin", None)

    async def anomalies(self, request: web.Request) -> web.Response:
        data = await self._admin.anomalies(request[PRINCIPAL])
        return self._render(request, "admin_anomalies.html", "admin-anomalies", "Anomalies", data)

    async def audit(self, request: web.Request) -> web.Response:
        action = request.query.get("action", "").strip()
        if len(action) > 64:
            return self._invalid(request, "admin-audit", "Audit log", InvalidRequest("action: at most 64 characters"), "audit")
        data = await self._admin.audit(request[PRINCIPAL], action)
        return self._render(request, "admin_audit.html", "admin-audit", "Audit log", data)


__all__ = ["SESSION", "WebRoutes"]
