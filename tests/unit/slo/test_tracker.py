"""SLO arithmetic on a controlled clock: rolling windows, percentiles, attainment, burn rates."""

from __future__ import annotations

import math

import pytest

from inferlab.config import SloSettings
from inferlab.config.tenants import SloTargets
from inferlab.slo import BOUNDS_S, Measure, RollingWindow, SloTracker, burn_rate, percentile_s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Seen:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str, str, bool]] = []
        self.objectives: dict[tuple[str, str], float] = {}

    def slo_outcome(self, tier: str, model: str, slo: str, good: bool) -> None:
        self.outcomes.append((tier, model, slo, good))

    def slo_objective(self, tier: str, slo: str, objective: float) -> None:
        self.objectives[(tier, slo)] = objective


TARGETS = SloTargets(ttft_p95_ms=500, tpot_p95_ms=50, availability=0.99)


def test_percentiles_are_the_upper_bound_of_their_bucket() -> None:
    clock = Clock()
    window = RollingWindow(60, 600, clock)
    for ms in range(1, 101):  # 1 … 100 ms
        window.record(ttft_s=ms / 1000)
    p95 = percentile_s(window.summary(600).ttft, 0.95)
    assert p95 is not None and 0.095 <= p95 <= 0.095 * 1.2
    assert percentile_s([0] * (len(BOUNDS_S) + 1), 0.95) is None


def test_windows_forget_what_slid_out() -> None:
    clock = Clock()
    window = RollingWindow(60, 3600, clock)
    window.record(available=False)
    clock.now += 600
    window.record(available=True)
    assert window.summary(300).counts["failed"] == 0 and window.summary(300).counts["ok"] == 1
    assert window.summary(3600).counts["failed"] == 1
    clock.now += 3600
    assert window.summary(3600).counts == dict.fromkeys(window.summary(3600).counts, 0)


def test_burn_rate_is_the_bad_fraction_over_the_budget() -> None:
    assert burn_rate(95, 5, 0.95) == pytest.approx(1.0)
    assert burn_rate(90, 10, 0.99) == pytest.approx(10.0)
    assert burn_rate(0, 0, 0.99) is None
    assert burn_rate(1, 1, 1.0) == math.inf


def test_the_tracker_judges_each_request_against_its_tier() -> None:
    clock, seen = Clock(), Seen()
    tracker = SloTracker(SloSettings(slot_s=10, windows_s=[60, 600]), seen, clock)
    for _ in range(19):
        tracker.record("pro", "m", TARGETS, Measure(ttft_s=0.2, tpot_s=0.02, available=True))
    tracker.record("pro", "m", TARGETS, Measure(ttft_s=0.9, tpot_s=0.09, available=True))  # slow
    tracker.record("pro", "m", TARGETS, Measure(available=False))  # a 5xx
    tracker.record("free", "m", SloTargets(availability=0.9), Measure(ttft_s=3.0, available=True))
    [free, pro] = tracker.report()
    assert (pro["tier"], pro["model"]) == ("pro", "m")
    window = pro["windows"][0]
    assert window["window_s"] == 60
    assert window["ttft"]["requests"] == 20 and window["ttft"]["good"] == 19
    assert window["ttft"]["attainment"] == pytest.approx(0.95) and window["ttft"]["met"] is True
    assert window["ttft"]["burn_rate"] == pytest.approx(1.0)
    assert 0.2 <= window["ttft"]["p95_ms"] / 1000 <= 0.9 * 1.2
    assert window["availability"]["requests"] == 21 and window["availability"]["good"] == 20
    assert window["availability"]["met"] is False and window["availability"]["burn_rate"] == pytest.approx(100 / 21)
    assert free["windows"][0]["ttft"] is None  # the tier sets no TTFT target
    assert seen.objectives == {("pro", "ttft"): 0.95, ("pro", "tpot"): 0.95, ("pro", "availability"): 0.99,
                               ("free", "availability"): 0.9}
    assert seen.outcomes.count(("pro", "m", "ttft", False)) == 1
    assert seen.outcomes.count(("pro", "m", "availability", False)) == 1
    assert ("free", "m", "ttft", False) not in seen.outcomes  # no target, no outcome
