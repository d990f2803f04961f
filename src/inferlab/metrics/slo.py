"""The SLO counters, named for multi-window burn-rate alerts (``deploy/prometheus/slo-alerts.yaml``):

    inferlab_slo_requests_total{tier, model, slo, outcome="good"|"bad"}
    inferlab_slo_objective{tier, slo}      the fraction of good requests the tier promises

so that, for any window W, the burn rate is

    sum(rate(inferlab_slo_requests_total{outcome="bad"}[W])) / sum(rate(inferlab_slo_requests_total[W]))
      / (1 - inferlab_slo_objective)

``tier`` takes the tier names platform admins define; ``model`` the configured models only.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SloMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "inferlab_slo_requests", "Requests judged against their tier's SLO, by outcome (good|bad)",
            ["tier", "model", "slo", "outcome"], registry=registry)
        self.objective = Gauge(
            "inferlab_slo_objective", "Fraction of requests that must be good (the error budget is 1 - this)",
            ["tier", "slo"], registry=registry)
        self._children: dict[tuple[str, str, str, bool], Counter] = {}

    # SloObserver (inferlab.slo)
    def slo_outcome(self, tier: str, model: str, slo: str, good: bool) -> None:
        key = (tier, model, slo, good)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(tier, model, slo, "good" if good else "bad")
        child.inc()

    def slo_objective(self, tier: str, slo: str, objective: float) -> None:
        self.objective.labels(tier, slo).set(objective)
