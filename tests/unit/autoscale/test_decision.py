"""The KPA-style decision over plain samples: windows, panic, tolerance, stabilisation, bounds, idleness."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from inferlab.autoscale.decision import (
    Decision,
    Sample,
    ScaleDecider,
    ScalePolicy,
    SlidingMax,
    SlidingMean,
    replicas_for,
)

POLICY = ScalePolicy(target=4, min_replicas=1, max_replicas=10, stable_window_s=60, panic_window_s=6,
                     scale_down_delay_s=30, idle_s=120)


def run(decider: ScaleDecider, loads: list[float], *, start: float = 0.0, step: float = 1.0, current: int = 1,
        follow: bool = True, last_request_at: float | None = 0.0) -> list[Decision]:
    """Feed one sample a step; the pool follows each decision at once when ``follow``."""
    decisions = []
    for i, load in enumerate(loads):
        at = start + i * step
        seen = at if load > 0 else last_request_at
        decision = decider.decide(Sample(at, load, current, last_request_at=seen))
        if load > 0:
            last_request_at = at
        decisions.append(decision)
        if follow:
            current = decision.desired
    return decisions


def test_steady_load_gets_load_over_target_plus_sqrt_headroom() -> None:
    decisions = run(ScaleDecider(POLICY), [16.0] * 120, current=8)
    assert decisions[-1].desired == math.ceil((16 + 0.75 * 4) / 4) == 5
    assert decisions[-1].direction == "hold"


def test_a_burst_is_answered_from_the_panic_window_within_seconds() -> None:
    decisions = run(ScaleDecider(POLICY), [2.0] * 60 + [30.0] * 10, current=1)
    at_burst = decisions[60:]
    first_up = next(i for i, d in enumerate(at_burst) if d.desired >= 5)
    assert first_up <= 2, [d.desired for d in at_burst]
    assert at_burst[first_up].panicking


def test_no_scale_down_while_panicking_and_stabilised_after() -> None:
    decider = ScaleDecider(POLICY)
    decisions = run(decider, [30.0] * 20 + [1.0] * 200, current=1)
    peak = max(d.desired for d in decisions)
    after = decisions[20:]
    # the load dropped at t=20: panic holds the count for a stable window, then the 30 s stabilisation
    assert all(d.desired == peak for d in after[:40])
    assert decisions[-1].desired == 1
    downs = [d for d in decisions if d.direction == "down"]
    assert downs and all(d.at >= 60 for d in downs)


def test_tolerance_band_holds_the_count() -> None:
    decider = ScaleDecider(ScalePolicy(target=10, headroom=0, tolerance=0.1, max_replicas=10))
    decision = decider.decide(Sample(0.0, 40.5, 4, last_request_at=0.0))  # 4.05 replicas: within 10 % of 4
    assert decision.desired == 4 and decision.reason == "within tolerance"


def test_bounds_and_schedule_bounds_clamp() -> None:
    decider = ScaleDecider(POLICY)
    assert decider.decide(Sample(0.0, 400.0, 1, last_request_at=0.0)).desired == 10
    decider = ScaleDecider(POLICY)
    decision = decider.decide(Sample(0.0, 0.5, 1, last_request_at=0.0, bounds=(3, 5)))
    assert decision.desired == 3 and decision.reason == "minimum"


def test_scale_to_zero_only_after_idle_and_back_on_activation() -> None:
    policy = ScalePolicy(target=4, min_replicas=0, max_replicas=3, idle_s=30, scale_down_delay_s=5,
                         stable_window_s=10, panic_window_s=2)
    decider = ScaleDecider(policy)
    decisions = run(decider, [2.0] * 5 + [0.0] * 60, current=1)
    zero_at = next(d.at for d in decisions if d.desired == 0)
    assert zero_at >= 4 + 30  # the last request was at t=4
    assert all(d.desired == 1 for d in decisions if d.at < zero_at)
    woken = decider.decide(Sample(100.0, 1.0, 0, last_request_at=100.0))
    assert woken.desired == 1 and woken.direction == "up"


def test_pressure_adds_replicas() -> None:
    calm = ScaleDecider(POLICY).decide(Sample(0.0, 16.0, 5, last_request_at=0.0))
    hot = ScaleDecider(POLICY).decide(Sample(0.0, 16.0, 5, pressure=1.5, last_request_at=0.0))
    assert hot.desired > calm.desired


def test_every_decision_carries_its_inputs() -> None:
    decision = ScaleDecider(POLICY).decide(Sample(0.0, 3.0, 1, last_request_at=0.0, signals={"queued": 2.0}))
    logged = decision.to_dict()
    assert logged["inputs"]["queued"] == 2.0 and logged["inputs"]["load"] == 3.0
    assert {"current", "desired", "direction", "reason", "stable_load", "panic_load", "panicking"} <= set(logged)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), min_size=1, max_size=200),
       st.integers(min_value=0, max_value=3), st.integers(min_value=3, max_value=12))
def test_property_always_within_bounds(loads: list[float], low: int, high: int) -> None:
    policy = ScalePolicy(target=4, min_replicas=low, max_replicas=high, idle_s=20, stable_window_s=30,
                         panic_window_s=3, scale_down_delay_s=10)
    for decision in run(ScaleDecider(policy), loads):
        assert low <= decision.desired <= high
        if decision.inputs["load"] > 0:
            assert decision.desired >= 1  # a waiting request always gets a replica


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1, max_value=200), st.integers(min_value=1, max_value=10_000))
def test_property_steady_load_converges_and_stays(load: float, seed: int) -> None:
    policy = ScalePolicy(target=4, max_replicas=100)
    decisions = run(ScaleDecider(policy), [load] * 300)
    tail = {d.desired for d in decisions[200:]}
    assert len(tail) == 1
    expected = math.ceil(replicas_for(load, policy) - 1e-9)
    assert abs(tail.pop() - expected) <= max(1, int(policy.tolerance * expected))


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(-100, 100)), min_size=1, max_size=100))
def test_property_sliding_mean_and_max_match_a_brute_force(points: list[tuple[float, float]]) -> None:
    mean, high = SlidingMean(10.0), SlidingMax(10.0)
    at, seen = 0.0, []
    for gap, value in points:
        at += gap
        seen.append((at, value))
        mean.add(at, value)
        got_max = high.add(at, int(value))
        window = [v for t, v in seen if t > at - 10.0]
        assert math.isclose(mean.mean(), max(0.0, sum(window) / len(window)), abs_tol=1e-6)
        assert got_max == max(int(v) for v in window)
