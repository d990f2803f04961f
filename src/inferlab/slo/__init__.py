"""Service-level objectives per tier and model: TTFT, TPOT and availability measured against each
tier's targets over rolling windows, their error-budget burn rates, and the Prometheus counters
(``inferlab_slo_requests_total``) that multi-window burn-rate alerts are written on
(``deploy/prometheus/slo-alerts.yaml``)."""

from inferlab.slo.report import burn_rate, window_report
from inferlab.slo.tracker import LATENCY_OBJECTIVE, SLOS, Measure, SloObserver, SloTracker, objectives
from inferlab.slo.window import BOUNDS_S, RollingWindow, Summary, percentile_s

__all__ = [
    "BOUNDS_S",
    "LATENCY_OBJECTIVE",
    "SLOS",
    "Measure",
    "RollingWindow",
    "SloObserver",
    "SloTracker",
    "Summary",
    "burn_rate",
    "objectives",
    "percentile_s",
    "window_report",
]
