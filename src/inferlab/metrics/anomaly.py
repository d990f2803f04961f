"""The anomaly detector's metrics (``deploy/prometheus/anomaly-alerts.yaml`` alerts on them):

    inferlab_anomaly_open_incidents{kind, scope}           incidents open now (this gateway's view)
    inferlab_anomaly_detections_total{kind, scope, rule}   intervals judged anomalous
    inferlab_anomaly_incidents_total{kind, scope}          incidents this gateway opened (and alerted)

``kind`` is one of a fixed set of metrics; ``scope`` model|replica|tenant: no subject names in
labels, so the label set stays bounded (the subject is in ``GET /admin/anomalies`` and the alert).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AnomalyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("inferlab_anomaly_open_incidents", "Anomaly incidents open now, by metric and scope",
                          ["kind", "scope"], registry=registry)
        self.detections = Counter("inferlab_anomaly_detections", "Intervals a series was judged anomalous, by rule",
                                  ["kind", "scope", "rule"], registry=registry)
        self.incidents = Counter("inferlab_anomaly_incidents", "Anomaly incidents opened (one alert each)",
                                 ["kind", "scope"], registry=registry)
        self._shown: set[tuple[str, str]] = set()

    # AnomalyObserver (inferlab.anomaly.service)
    def detection(self, kind: str, scope: str, rule: str) -> None:
        self.detections.labels(kind, scope, rule).inc()

    def incident_opened(self, kind: str, scope: str) -> None:
        self.incidents.labels(kind, scope).inc()

    def open_incidents(self, counts: dict[tuple[str, str], int]) -> None:
        for group in self._shown - set(counts):
            self.open.labels(*group).set(0)
        for group, count in counts.items():
            self.open.labels(*group).set(count)
        self._shown |= set(counts)
