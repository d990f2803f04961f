"""Each dashboard page's data: one or two reads from the services the API uses, as a template's
context. The admin pages are a platform admin's; the portal pages show the signed-in user's own
tenant — the tenant comes from the session's principal, never from a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from inferlab.auth.audit import event_json
from inferlab.auth.model import ROLE_RANK, Principal
from inferlab.billing.money import text
from inferlab.errors import InferLabError, NotFound
from inferlab.metering.analytics import Dimension
from inferlab.web.sources import Sources
from inferlab.web.usage_view import last_days, page_query, usage_view

LIST_LIMIT = 200
INVOICE_LIMIT = 100  # the API's default page of invoices
INVOICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # the billing API's invoice id pattern
ADMIN_GROUPS: tuple[Dimension, ...] = ("tenant", "model")  # the admin usage page and its CSV (the chart: by day)


def today() -> date:
    return datetime.now(UTC).date()


class AdminPages:
    def __init__(self, sources: Sources) -> None:
        self._s = sources

    async def overview(self, actor: Principal) -> dict[str, Any]:
        """Traffic and errors per day (one rollup query), TTFT per tier against its SLO (in memory)."""
        chart: dict[str, list[Any]] = {}
        totals = {"requests": 0, "errors": 0, "tokens": 0}
        as_of = None
        if self._s.platform_usage is not None:
            query = last_days(today(), 14)
            rows = await self._s.platform_usage.usage(query)
            as_of = self._s.platform_usage.age_s(query)
            per_day: dict[str, list[int]] = {}
            for row in rows:
                counts = per_day.setdefault(row.value("day"), [0, 0])
                counts[0] += row.totals.requests
                if row.value("status") != "success":
                    counts[1] += row.totals.requests
                totals["tokens"] += row.totals.total_tokens
            labels = [d.isoformat() for d in (query.start.fromordinal(query.start.toordinal() + n)
                                               for n in range((query.end - query.start).days))]
            chart = {"x": labels, "requests": [per_day.get(d, [0, 0])[0] for d in labels],
                     "errors": [per_day.get(d, [0, 0])[1] for d in labels]}
            totals["requests"] = sum(chart["requests"])
            totals["errors"] = sum(chart["errors"])
        slo = []
        for series in (self._s.slo.report() if self._s.slo is not None else []):
            window = series["windows"][0] if series["windows"] else {}
            ttft = window.get("ttft") or {}
            slo.append({"tier": series["tier"], "model": series["model"], "target_ms": ttft.get("target_ms"),
                        "p95_ms": ttft.get("p95_ms"), "attainment": ttft.get("attainment"), "met": ttft.get("met"),
                        "requests": ttft.get("requests", 0), "window_s": window.get("window_s")})
        pools = self._pools()
        return {"chart": chart, "totals": totals, "slo": slo, "metering": self._s.platform_usage is not None,
                "age_s": as_of,
                "slo_on": self._s.slo is not None, "replicas": sum(len(p["replicas"]) for p in pools),
                "healthy": sum(1 for p in pools for r in p["replicas"] if r["healthy"])}

    def _pools(self) -> list[dict[str, Any]]:
        return [{"role": role, **pool.snapshot(), "queue": self._s.pool_queue(pool)}
                for role, pool in self._s.router.all_pools()]

    async def models(self, actor: Principal) -> dict[str, Any]:
        versions, aliases, experiments = [], [], []
        if self._s.registry is not None:
            state = await self._s.registry.state()
            versions = [{"model": mv.model, "version": mv.version, "backend": mv.spec.get("backend", ""),
                         "digest": mv.digest or "", "created_at": mv.created_at}
                        for _, mv in sorted(state.versions.items())]
            aliases = [{"model": m, "alias": a, "version": v} for (m, a), v in sorted(state.aliases.items())]
            experiments = [{"id": e.id, "model": e.model, "control": e.control, "candidate": e.candidate,
                            "weight": e.weight, "state": e.state} for _, e in sorted(state.experiments.items())]
        pools = [{"model": p["model"], "role": p["role"], "strategy": p["strategy"], "replicas": len(p["replicas"])}
                 for p in self._pools()]
        return {"registry": self._s.registry is not None, "versions": versions, "aliases": aliases,
                "experiments": experiments, "pools": pools}

    async def pools(self, actor: Principal) -> dict[str, Any]:
        decisions = list(self._s.autoscaler.recent_decisions(50)) if self._s.autoscaler is not None else None
        return {"pools": self._pools(), "decisions": decisions}

    async def tenants(self, actor: Principal) -> dict[str, Any]:
        return {"tenants": list(await self._s.tenants.list_tenants(actor, LIST_LIMIT, None))}

    async def users(self, actor: Principal) -> dict[str, Any]:
        users = list(await self._s.identity.list_users(actor, LIST_LIMIT, None))
        keys = list(await self._s.identity.list_keys(actor, LIST_LIMIT, None))
        return {"users": users, "keys": keys}

    async def limits(self, actor: Principal) -> dict[str, Any]:
        tiers = [view.as_json() for view in await self._s.tenants.tiers(actor)]
        return {"tiers": tiers}

    async def usage(self, actor: Principal, params: Mapping[str, str]) -> dict[str, Any]:
        cached = self._s.platform_usage
        if cached is None:
            return {"metering": False, "params": dict(params)}
        query = page_query(params, "admin", ADMIN_GROUPS, None)
        view = await usage_view(cached, query, "admin", None)
        return {"metering": True, "view": view, "params": dict(params), "age_s": cached.age_s(query)}

    async def anomalies(self, actor: Principal) -> dict[str, Any]:
        found = list(await self._s.anomalies.recent_anomalies(100)) if self._s.anomalies is not None else None
        return {"anomalies": found}

    async def audit(self, actor: Principal, action: str | None) -> dict[str, Any]:
        events = await self._s.audit.list(actor, LIST_LIMIT, None, action=action or None)
        return {"events": [event_json(e) for e in events], "action": action or ""}


class PortalPages:
    def __init__(self, sources: Sources) -> None:
        self._s = sources

    async def usage(self, actor: Principal, params: Mapping[str, str]) -> dict[str, Any]:
        if self._s.analytics is None:
            return {"metering": False, "params": dict(params)}
        group: tuple[Dimension, ...] = ("day", "model", "key")
        query = page_query(params, "tenant", group, actor.tenant_id)
        view = await usage_view(self._s.analytics, query, "tenant", actor.tenant_id)
        return {"metering": True, "view": view, "params": dict(params)}

    async def spend(self, actor: Principal) -> dict[str, Any]:
        """This month's spend and tokens against the tenant's monthly quotas, and the forecast."""
        if self._s.forecaster is None:
            return {"metering": False}
        [forecast] = await self._s.forecaster.forecast(today(), (actor.tenant_id,))
        budget = await self._s.budget_of(actor.tenant_id) if self._s.budget_of is not None else None
        return {"metering": True, "forecast": forecast.as_json(),
                "quota_tokens": getattr(budget, "monthly_tokens", None),
                "quota_spend": getattr(budget, "monthly_spend_usd", None)}

    async def keys(self, actor: Principal) -> dict[str, Any]:
        mine = list(await self._s.identity.list_keys(actor, LIST_LIMIT, None, user_id=actor.user_id))
        return {"keys": mine}

    async def invoices(self, actor: Principal) -> dict[str, Any]:
        """The tenant's invoices, newest period first, as the API lists them (the same store call and
        the same JSON: the page shows the API's figures), and its billing account: two reads."""
        if self._s.billing is None:
            return {"billing": False}
        found = await self._s.billing.store.invoices(actor.tenant_id, limit=INVOICE_LIMIT)
        account = await self._s.billing.account(actor.tenant_id)
        return {"billing": True, "invoices": [i.as_json() for i in found], "account": account,
                "more": len(found) >= INVOICE_LIMIT}

    async def invoice_json(self, actor: Principal, invoice_id: str) -> dict[str, Any]:
        """One of the tenant's invoices exactly as ``GET /v1/billing/invoices/<id>`` returns it: one read."""
        if self._s.billing is None or not INVOICE_ID.match(invoice_id):
            raise NotFound("No such invoice")
        return (await self._s.billing.get(invoice_id, tenant=actor.tenant_id)).as_json()

    async def invoice(self, actor: Principal, invoice_id: str) -> dict[str, Any]:
        """One of the tenant's invoices (another tenant's is ``NotFound``, like a missing one), as the
        API returns it, its credit notes and the history of its states: two reads."""
        if self._s.billing is None or not INVOICE_ID.match(invoice_id):
            raise NotFound("No such invoice")
        invoice = await self._s.billing.get(invoice_id, tenant=actor.tenant_id)
        notes = await self._s.billing.store.credit_notes(invoice.id)
        history = [("draft", invoice.created_at), ("finalized", invoice.finalized_at), ("paid", invoice.paid_at),
                   ("void", invoice.voided_at)]
        history += [(f"{n.kind} {text(n.amount)}", n.created_at) for n in notes]
        return {"invoice": invoice.as_json(),
                "notes": [{"kind": n.kind, "amount": text(n.amount), "reason": n.reason, "created_at": n.created_at}
                          for n in notes],
                "history": sorted(((what, at) for what, at in history if at is not None), key=lambda h: h[1])}

    async def payment_method(self, actor: Principal) -> dict[str, Any]:
        """The card on file as the payment provider describes it (brand, last 4, expiry), and whether
        this user may replace it (a tenant admin of the tenant)."""
        if self._s.billing is None or self._s.cards is None:
            return {"billing": False}
        card, unreachable = None, None
        try:
            card = await self._s.cards.on_file(actor.tenant_id)
        except InferLabError as exc:  # the provider down: say so, the page still renders
            unreachable = exc.message
        may_change = actor.rank >= ROLE_RANK["tenant-admin"] and "admin" in actor.scopes.groups
        return {"billing": True, "card": card, "unreachable": unreachable, "may_change": may_change,
                "provider": self._s.cards.provider_name}
