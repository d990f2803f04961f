"""SLO attainment per tier and model: each request's measures judged against its tier's targets,
counted in a rolling window (in this gateway) and reported to an observer (the Prometheus
counters that burn-rate alerts are written on).

Three SLOs per tier (``SloTargets``):

    ttft          time to first token of a streamed request ≤ ttft_p95_ms, for 95 % of them
    tpot          time per output token after the first, of a stream of 2 tokens or more,
                  ≤ tpot_p95_ms for 95 % of them
    availability  answers that are not the gateway's 5xx (503 shed or out of capacity, 502,
                  504 ...), of the answers that were not the client's own error (4xx), ≥ availability

A non-streamed request has no first token to time: it counts for availability only. A client
that went away counts for nothing. The error budget of an SLO is 1 − its objective (5 % for the
latency SLOs); the burn rate is the bad fraction over the budget (1: spent exactly at the end of
the window; 14.4 over an hour: 2 % of a 30-day budget gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from inferlab.config import SloSettings
from inferlab.config.tenants import SloTargets
from inferlab.slo.report import window_report
from inferlab.slo.window import RollingWindow

LATENCY_OBJECTIVE = 0.95  # the "p95" of ttft_p95_ms and tpot_p95_ms: 95 % of requests within the target
SLOS = ("ttft", "tpot", "availability")


class SloObserver(Protocol):
    def slo_outcome(self, tier: str, model: str, slo: str, good: bool) -> None: ...

    def slo_objective(self, tier: str, slo: str, objective: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Measure:
    """What one request showed: None where it says nothing about that SLO."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    available: bool | None = None


def objectives(targets: SloTargets) -> dict[str, float]:
    """The objective (fraction of good requests required) of each SLO the tier sets."""
    found = {}
    if targets.ttft_p95_ms is not None:
        found["ttft"] = LATENCY_OBJECTIVE
    if targets.tpot_p95_ms is not None:
        found["tpot"] = LATENCY_OBJECTIVE
    if targets.availability is not None:
        found["availability"] = targets.availability
    return found


class _Series:
    __slots__ = ("targets", "window")

    def __init__(self, window: RollingWindow, targets: SloTargets) -> None:
        self.window = window
        self.targets = targets


class SloTracker:
    def __init__(self, settings: SloSettings, observer: SloObserver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._observer = observer
        self._clock = clock
        self._series: dict[tuple[str, str], _Series] = {}
        self._objectives: dict[tuple[str, str], float] = {}

    def record(self, tier: str, model: str, targets: SloTargets, measure: Measure) -> None:
        series = self._series.get((tier, model))
        if series is None:
            span = max(self._settings.windows_s)
            series = self._series[(tier, model)] = _Series(
                RollingWindow(self._settings.slot_s, span, self._clock), targets)
        series.targets = targets  # a tier's targets may change (stored tiers)
        ttft_good = measure.ttft_s is not None and targets.ttft_p95_ms is not None and \
            measure.ttft_s * 1000 <= targets.ttft_p95_ms
        tpot_good = measure.tpot_s is not None and targets.tpot_p95_ms is not None and \
            measure.tpot_s * 1000 <= targets.tpot_p95_ms
        series.window.record(ttft_s=measure.ttft_s, ttft_good=ttft_good, tpot_s=measure.tpot_s,
                             tpot_good=tpot_good, available=measure.available)
        if self._observer is not None:
            self._observe(tier, model, targets, measure, ttft_good, tpot_good)

    def _observe(self, tier: str, model: str, targets: SloTargets, measure: Measure, ttft_good: bool,
                 tpot_good: bool) -> None:
        observer = self._observer
        assert observer is not None
        for slo, objective in objectives(targets).items():
            if self._objectives.get((tier, slo)) != objective:
                self._objectives[(tier, slo)] = objective
                observer.slo_objective(tier, slo, objective)
        if measure.ttft_s is not None and targets.ttft_p95_ms is not None:
            observer.slo_outcome(tier, model, "ttft", ttft_good)
        if measure.tpot_s is not None and targets.tpot_p95_ms is not None:
            observer.slo_outcome(tier, model, "tpot", tpot_good)
        if measure.available is not None and targets.availability is not None:
            observer.slo_outcome(tier, model, "availability", measure.available)

    def report(self) -> list[dict[str, Any]]:
        """Per tier and model, per window: attainment, p95s, burn rates (``GET /admin/slo``)."""
        rows = []
        for (tier, model), series in sorted(self._series.items()):
            targets = series.targets
            rows.append({
                "tier": tier, "model": model, "targets": targets.model_dump(),
                "windows": [window_report(series.window.summary(window_s), targets, objectives(targets))
                            for window_s in self._settings.windows_s],
            })
        return rows
