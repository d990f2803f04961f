"""Per-variant figures of the model registry's experiments (``inferlab.registry``):

    inferlab_variant_requests_total{model, experiment, variant, outcome="ok"|"error"}
    inferlab_variant_ttft_seconds{model, experiment, variant}      histogram
    inferlab_variant_itl_seconds{model, experiment, variant}       histogram
    inferlab_variant_output_tokens_total{model, experiment, variant}
    inferlab_variant_cost_usd_total{model, experiment, variant}
    inferlab_variant_feedback_total{model, experiment, variant, score="up"|"down"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

if TYPE_CHECKING:
    from inferlab.registry.model import Variant
    from inferlab.registry.stats import Outcome

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LABELS = ["model", "experiment", "variant"]


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("inferlab_variant_requests", "Requests of an experiment's variant, by outcome",
                                [*LABELS, "outcome"], registry=registry)
        self.ttft = Histogram("inferlab_variant_ttft_seconds", "Time to first token of an experiment's variant",
                              LABELS, buckets=LATENCY_BUCKETS, registry=registry)
        self.itl = Histogram("inferlab_variant_itl_seconds", "Inter-token latency of an experiment's variant",
                             LABELS, buckets=LATENCY_BUCKETS, registry=registry)
        self.output_tokens = Counter("inferlab_variant_output_tokens", "Completion tokens of an experiment's variant",
                                     LABELS, registry=registry)
        self.cost = Counter("inferlab_variant_cost_usd", "List-price cost of an experiment's variant", LABELS,
                            registry=registry)
        self.feedback = Counter("inferlab_variant_feedback", "User feedback on an experiment's variant",
                                [*LABELS, "score"], registry=registry)

    def variant_outcome(self, model: str, experiment: str, variant: Variant, outcome: Outcome) -> None:
        self.requests.labels(model, experiment, variant, "ok" if outcome.ok else "error").inc()
        if outcome.ttft_s is not None:
            self.ttft.labels(model, experiment, variant).observe(outcome.ttft_s)
        if outcome.itl_s:
            itl = self.itl.labels(model, experiment, variant)
            for gap in outcome.itl_s:
                itl.observe(gap)
        if outcome.output_tokens:
            self.output_tokens.labels(model, experiment, variant).inc(outcome.output_tokens)
        if outcome.cost_usd:
            self.cost.labels(model, experiment, variant).inc(outcome.cost_usd)

    def variant_feedback(self, model: str, experiment: str, variant: Variant, positive: bool) -> None:
        self.feedback.labels(model, experiment, variant, "up" if positive else "down").inc()
