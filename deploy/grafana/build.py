"""Write InferLab's Grafana dashboards (``dashboards/*.json``) from the definitions below.

    python deploy/grafana/build.py           # rewrite the JSON files
    python deploy/grafana/build.py --check   # exit 1 when a JSON file differs from what this writes

Every query reads the metrics a gateway exports at ``/metrics`` (no recording rules needed); the
tests check each dashboard against ``dashboard.schema.json`` and each metric against a live
gateway's ``/metrics`` (tests/integration/grafana). Dashboards pick the Prometheus data source
through the ``datasource`` variable, so they import into any Grafana whatever its data source uid.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
M = 'model=~"$model"'
T = 'tenant=~"$tenant"'


class Board:
    """Panels laid out left to right on Grafana's 24-column grid, rows of equal height."""

    def __init__(self, uid: str, title: str, description: str, variables: list[dict[str, Any]]) -> None:
        self.uid, self.title, self.description, self.variables = uid, title, description, variables
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self._y, "w": 24, "h": 1}, "panels": []})
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0

    def panel(self, kind: str, title: str, targets: list[tuple[str, str]], *, w: int = 12, h: int = 8,
              unit: str = "short", description: str = "", stack: bool = False,
              thresholds: list[tuple[float | None, str]] | None = None, decimals: int | None = None) -> None:
        if self._x + w > 24:
            self._newline()
        defaults: dict[str, Any] = {"unit": unit}
        if decimals is not None:
            defaults["decimals"] = decimals
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in thresholds]}
        if kind == "timeseries":
            defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
                                  "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                                   "tooltip": {"mode": "multi", "sort": "desc"}} if kind == "timeseries" else {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
            "graphMode": "area", "textMode": "auto"}
        self.panels.append({
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description, "datasource": DS,
            "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
                         "range": True, "instant": False} for i, (expr, legend) in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options,
        })
        self._x += w
        self._row_h = max(self._row_h, h)

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": ["inferlab"],
            "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
            "timezone": "browser", "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": self.variables}, "annotations": {"list": []},
            "links": [{"title": "InferLab dashboards", "type": "dashboards", "tags": ["inferlab"], "asDropdown": True}],
            "panels": self.panels,
        }


def datasource_var() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False}


def query_var(name: str, label: str, metric: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": f"label_values({metric}, {name})", "refId": f"{name}-values"},
            "definition": f"label_values({metric}, {name})", "current": {}, "hide": 0, "refresh": 2, "regex": "",
            "sort": 1, "includeAll": True, "allValue": ".*", "multi": True}


def overview() -> Board:
    b = Board("inferlab-overview", "InferLab / Overview", "Traffic, errors, latency and tokens across the gateway.",
              [datasource_var(), query_var("model", "Model", "inferlab_requests_total")])
    inference = f'route=~"/v1/.*", {M}'
    b.row("Now")
    b.panel("stat", "Requests / s", [(f"sum(rate(inferlab_requests_total{{{inference}}}[5m]))", "req/s")],
            w=4, h=4, unit="reqps")
    b.panel("stat", "Error ratio (5xx)", [(
        (f'sum(rate(inferlab_requests_total{{{inference}, status=~"5.."}}[5m])) / '
        f"clamp_min(sum(rate(inferlab_requests_total{{{inference}}}[5m])), 1e-9)"), "5xx")],
        w=4, h=4, unit="percentunit", decimals=2, thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")])
    b.panel("stat", "Refused (429) ratio", [(
        (f'sum(rate(inferlab_requests_total{{{inference}, status="429"}}[5m])) / '
        f"clamp_min(sum(rate(inferlab_requests_total{{{inference}}}[5m])), 1e-9)"), "429")],
        w=4, h=4, unit="percentunit", decimals=2, thresholds=[(None, "green"), (0.05, "orange")])
    b.panel("stat", "p95 latency", [(
        f"histogram_quantile(0.95, sum by (le) (rate(inferlab_request_duration_seconds_bucket{{{inference}}}[5m])))",
        "p95")], w=4, h=4, unit="s")
    b.panel("stat", "p95 time to first token", [(
        f"histogram_quantile(0.95, sum by (le) (rate(inferlab_time_to_first_token_seconds_bucket{{{M}}}[5m])))",
        "p95")], w=4, h=4, unit="s")
    b.panel("stat", "In flight", [(f"sum(inferlab_requests_in_flight{{{M}}})", "in flight")], w=4, h=4)
    b.row("Traffic")
    b.panel("timeseries", "Requests / s by status", [(
        f"sum by (status) (rate(inferlab_requests_total{{{inference}}}[$__rate_interval]))", "{{status}}")],
        unit="reqps", stack=True)
    b.panel("timeseries", "Requests / s by model and route", [(
        f"sum by (model, route) (rate(inferlab_requests_total{{{inference}}}[$__rate_interval]))",
        "{{model}} {{route}}")], unit="reqps")
    b.panel("timeseries", "Tokens / s", [(
        f"sum by (model, direction) (rate(inferlab_tokens_total{{{M}}}[$__rate_interval]))",
        "{{model}} {{direction}}")], unit="short", stack=True)
    b.panel("timeseries", "Refusals / s by limit", [
        ("sum by (kind) (rate(inferlab_ratelimit_rejections_total[$__rate_interval]))", "{{kind}}")], unit="reqps")
    b.row("Latency")
    b.panel("timeseries", "Request latency", [
        ((f"histogram_quantile({q}, sum by (le) (rate(inferlab_request_duration_seconds_bucket{{{inference}}}"
         f"[$__rate_interval])))"), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)], unit="s")
    b.panel("timeseries", "Time to first token by model (p95)", [(
        (f"histogram_quantile(0.95, sum by (model, le) (rate(inferlab_time_to_first_token_seconds_bucket{{{M}}}"
        "[$__rate_interval])))"), "{{model}}")], unit="s")
    b.row("Gateway health")
    b.panel("timeseries", "Response cache", [(
        "sum by (result) (rate(inferlab_cache_requests_total[$__rate_interval]))", "{{result}}")], unit="reqps", w=8)
    b.panel("timeseries", "Dependencies up", [("min by (dependency) (inferlab_dependency_up)", "{{dependency}}")],
            w=8, unit="bool")
    b.panel("timeseries", "Admitted, not yet settled (rate-limit reservations)", [
        ("sum(inferlab_ratelimit_reservations)", "reservations")], w=8)
    return b


def slo() -> Board:
    b = Board("inferlab-slo", "InferLab / Latency & SLO per tier",
              "SLO attainment, error-budget burn and latency per tier and model (inferlab_slo_*).",
              [datasource_var(), query_var("tier", "Tier", "inferlab_slo_requests_total"),
               query_var("model", "Model", "inferlab_slo_requests_total")])
    sel = f'tier=~"$tier", {M}'
    b.row("Attainment")
    b.panel("stat", "Good requests (window)", [(
        (f'sum by (tier, slo) (increase(inferlab_slo_requests_total{{{sel}, outcome="good"}}[$__range])) / '
        f"clamp_min(sum by (tier, slo) (increase(inferlab_slo_requests_total{{{sel}}}[$__range])), 1e-9)"),
        "{{tier}} {{slo}}")], w=12, h=6, unit="percentunit", decimals=3,
        thresholds=[(None, "red"), (0.99, "orange"), (0.999, "green")])
    b.panel("stat", "Objective", [('max by (tier, slo) (inferlab_slo_objective{tier=~"$tier"})', "{{tier}} {{slo}}")],
            w=12, h=6, unit="percentunit", decimals=3)
    b.row("Error budget")
    for window in ("1h", "6h"):
        b.panel("timeseries", f"Burn rate ({window})", [(
            (f'(sum by (tier, slo) (rate(inferlab_slo_requests_total{{{sel}, outcome="bad"}}[{window}])) / '
            f"clamp_min(sum by (tier, slo) (rate(inferlab_slo_requests_total{{{sel}}}[{window}])), 1e-9)) / "
            f'on (tier, slo) (1 - max by (tier, slo) (inferlab_slo_objective{{tier=~"$tier"}}))'),
            "{{tier}} {{slo}}")], description="1 spends the budget exactly over the SLO period; above 14.4 pages",
            thresholds=[(None, "green"), (1, "orange"), (14.4, "red")])
    b.panel("timeseries", "Bad requests / s", [(
        f'sum by (tier, model, slo) (rate(inferlab_slo_requests_total{{{sel}, outcome="bad"}}[$__rate_interval]))',
        "{{tier}} {{model}} {{slo}}")], w=24, unit="reqps")
    b.row("Latency")
    for q in (0.5, 0.95, 0.99):
        b.panel("timeseries", f"Time to first token p{round(q * 100)} by model", [(
            (f"histogram_quantile({q}, sum by (model, le) (rate(inferlab_time_to_first_token_seconds_bucket{{{M}}}"
            "[$__rate_interval])))"), "{{model}}")], w=8, unit="s")
    b.panel("timeseries", "Request latency p95 by route", [(
        (f"histogram_quantile(0.95, sum by (route, le) (rate(inferlab_request_duration_seconds_bucket{{{M}}}"
        "[$__rate_interval])))"), "{{route}}")], unit="s")
    b.panel("timeseries", "Queue wait p95 by outcome", [(
        (f"histogram_quantile(0.95, sum by (outcome, le) (rate(inferlab_queue_wait_seconds_bucket{{{M}}}"
        "[$__rate_interval])))"), "{{outcome}}")], unit="s")
    return b


def pools() -> Board:
    b = Board("inferlab-pools", "InferLab / Pools, replicas & engines",
              "Replica health and circuit breakers, managed engines, queues and failover per model pool.",
              [datasource_var(), query_var("model", "Model", "inferlab_replica_healthy")])
    b.row("Replicas")
    b.panel("stat", "Healthy replicas", [(f"sum by (model) (inferlab_replica_healthy{{{M}}})", "{{model}}")],
            w=8, h=5, thresholds=[(None, "red"), (1, "green")])
    b.panel("stat", "Open breakers", [(f"sum(inferlab_replica_breaker_open{{{M}}} == 1) or vector(0)", "open")],
            w=8, h=5, thresholds=[(None, "green"), (1, "red")])
    b.panel("stat", "Managed engines up", [("sum(inferlab_engine_up) or vector(0)", "up")], w=8, h=5)
    b.panel("timeseries", "Replica healthy", [(f"max by (model, replica) (inferlab_replica_healthy{{{M}}})",
                                               "{{model}} {{replica}}")], unit="bool")
    b.panel("timeseries", "Breaker state (1 open, 0.5 half-open)", [(
        f"max by (model, replica) (inferlab_replica_breaker_open{{{M}}})", "{{model}} {{replica}}")])
    b.row("Queues and failover")
    b.panel("timeseries", "Queue depth", [(f"sum by (model) (inferlab_queue_depth{{{M}}})", "{{model}}")], w=8)
    b.panel("timeseries", "Queue wait p95", [(
        (f"histogram_quantile(0.95, sum by (model, le) (rate(inferlab_queue_wait_seconds_bucket{{{M}}}"
        "[$__rate_interval])))"), "{{model}}")], w=8, unit="s")
    b.panel("timeseries", "Failover retries / s", [(
        f"sum by (model, reason) (rate(inferlab_retries_total{{{M}}}[$__rate_interval]))", "{{model}} {{reason}}")],
        w=8, unit="reqps")
    b.panel("timeseries", "In flight by model", [(f"sum by (model) (inferlab_requests_in_flight{{{M}}})", "{{model}}")],
            w=24)
    b.row("Managed engines")
    b.panel("timeseries", "Engine up", [("max by (engine) (inferlab_engine_up)", "{{engine}}")], w=8, unit="bool")
    b.panel("timeseries", "Engine restarts", [(
        "sum by (engine) (increase(inferlab_engine_restarts_total[$__rate_interval]))", "{{engine}}")], w=8)
    b.panel("timeseries", "Engine group transitions", [(
        "sum by (group, state) (increase(inferlab_engine_group_transitions_total[$__rate_interval]))",
        "{{group}} → {{state}}")], w=8)
    return b


def tenants() -> Board:
    b = Board("inferlab-tenants", "InferLab / Tenants: usage & cost",
              "Tokens, list-price cost, refusals and capacity per tenant (the first tenants.top_tenants_in_metrics "
              "tenants by name, the rest as 'other'), and the usage pipeline behind the invoices.",
              [datasource_var(), query_var("tenant", "Tenant", "inferlab_tenant_tokens_total")])
    b.row("Usage and cost")
    b.panel("stat", "Cost in range (list price)", [(
        f"sum by (tenant) (increase(inferlab_tenant_cost_usd_total{{{T}}}[$__range]))", "{{tenant}}")],
        w=12, h=6, unit="currencyUSD", decimals=2)
    b.panel("stat", "Tokens in range", [(
        f"sum by (tenant) (increase(inferlab_tenant_tokens_total{{{T}}}[$__range]))", "{{tenant}}")],
        w=12, h=6, unit="short")
    b.panel("timeseries", "Tokens / s by tenant", [(
        f"sum by (tenant, direction) (rate(inferlab_tenant_tokens_total{{{T}}}[$__rate_interval]))",
        "{{tenant}} {{direction}}")], stack=True)
    b.panel("timeseries", "Cost / hour by tenant (list price)", [(
        f"sum by (tenant) (rate(inferlab_tenant_cost_usd_total{{{T}}}[$__rate_interval])) * 3600", "{{tenant}}")],
        unit="currencyUSD", stack=True)
    b.row("Limits and capacity")
    b.panel("timeseries", "Refused / s by reason", [(
        f"sum by (tenant, reason) (rate(inferlab_tenant_requests_refused_total{{{T}}}[$__rate_interval]))",
        "{{tenant}} {{reason}}")], w=8, unit="reqps")
    b.panel("timeseries", "In flight by tenant and tier", [(
        f"sum by (tenant, tier) (inferlab_tenant_requests_in_flight{{{T}}})", "{{tenant}} {{tier}}")], w=8)
    b.panel("timeseries", "KV-cache tokens held (borrowed dashed above the guarantee)", [
        (f"sum by (tenant, pool) (inferlab_tenant_kv_tokens_held{{{T}}})", "{{tenant}} {{pool}} held"),
        (f"sum by (tenant, pool) (inferlab_tenant_kv_tokens_borrowed{{{T}}})", "{{tenant}} {{pool}} borrowed"),
        (f"sum by (tenant, pool) (inferlab_tenant_sequences_held{{{T}}})", "{{tenant}} {{pool}} sequences")], w=8)
    b.row("Usage pipeline (metering)")
    b.panel("timeseries", "Usage events / s", [
        ("sum(rate(inferlab_usage_events_recorded_total[$__rate_interval]))", "recorded"),
        ("sum by (new) (rate(inferlab_usage_events_shipped_total[$__rate_interval]))", "shipped new={{new}}"),
        ("sum(rate(inferlab_usage_events_dropped_total[$__rate_interval]))", "dropped"),
        ("sum(rate(inferlab_usage_events_set_aside_total[$__rate_interval]))", "set aside")], w=12)
    b.panel("timeseries", "Outbox backlog and ship failures", [
        ("max(inferlab_usage_outbox_backlog)", "backlog (events)"),
        ("sum(increase(inferlab_usage_ship_failures_total[$__rate_interval]))", "ship failures")], w=12)
    return b


BOARDS = {"inferlab-overview.json": overview, "inferlab-latency-slo.json": slo,
          "inferlab-pools-engines.json": pools, "inferlab-tenants-usage.json": tenants}


def render() -> dict[str, str]:
    return {name: json.dumps(build().json(), indent=2, ensure_ascii=False) + "\n" for name, build in BOARDS.items()}


def main(argv: list[str]) -> int:
    out = HERE / "dashboards"
    stale = []
    for name, text in render().items():
        path = out / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}: run python deploy/grafana/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
