"""The autoscaler's metrics (``AutoscaleObserver``, ``inferlab.autoscale``):

    inferlab_autoscaler_desired_replicas{model}     the last decision
    inferlab_autoscaler_actual_replicas{model}      replicas ready now
    inferlab_autoscaler_decisions_total{model, direction="up"|"down"|"hold"}
    inferlab_autoscaler_panicking{model}            1 while the panic window decides
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AutoscaleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.desired = Gauge("inferlab_autoscaler_desired_replicas", "Replicas the autoscaler last decided on",
                             ["model"], registry=registry)
        self.actual = Gauge("inferlab_autoscaler_actual_replicas", "Replicas ready now", ["model"], registry=registry)
        self.decisions = Counter("inferlab_autoscaler_decisions", "Autoscaling decisions, by direction",
                                 ["model", "direction"], registry=registry)
        self.panicking = Gauge("inferlab_autoscaler_panicking", "1 while the panic window decides", ["model"],
                               registry=registry)

    def autoscale_decided(self, model: str, desired: int, actual: int, direction: str, panicking: bool) -> None:
        self.desired.labels(model).set(desired)
        self.actual.labels(model).set(actual)
        self.decisions.labels(model, direction).inc()
        self.panicking.labels(model).set(1 if panicking else 0)
