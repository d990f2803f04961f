"""Reading InferLab's Grafana dashboards (deploy/grafana): their panels, their PromQL, and the metric
names and label matchers each query uses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SCHEMA = GRAFANA / "dashboard.schema.json"
# Grafana's own variables, replaced as Grafana would before Prometheus sees the query
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_METRIC = re.compile(r"\b(inferlab_[A-Za-z0-9_:]*)")
_SELECTOR = re.compile(r"\b(inferlab_[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str

    def promql(self) -> str:
        """The query as Prometheus receives it: Grafana's variables replaced, ``$var`` matching anything."""
        text = self.expr
        for name, value in GRAFANA_VARIABLES.items():
            text = text.replace(name, value)
        return re.sub(r"\$[A-Za-z_][A-Za-z0-9_]*", ".*", text)


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def queries(path: Path) -> Iterator[Query]:
    """Every panel target, and every query variable (``label_values(metric, label)``)."""
    board = load(path)
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield Query(path.name, panel["title"], target["expr"])
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            yield Query(path.name, f"variable {variable['name']}", variable["query"]["query"])


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(_STRING.sub('""', expr)))


def matched_labels(expr: str) -> list[tuple[str, set[str]]]:
    """``[(metric, {label names its selector matches on})]``."""
    return [(name, set(_MATCHER.findall(body))) for name, body in _SELECTOR.findall(expr)]


def label_values_label(expr: str) -> tuple[str, str] | None:
    found = re.fullmatch(r"label_values\((inferlab_[A-Za-z0-9_:]+),\s*([A-Za-z_][A-Za-z0-9_]*)\)", expr.strip())
    return (found.group(1), found.group(2)) if found else None
