"""The detector on a labelled synthetic set (``inferlab.anomaly.synthetic``, seeded): level shifts,
spikes, slow drifts on seasonal series, and one bad replica among healthy peers — precision and
recall ≥ 0.9, every detection within 2 intervals, on several hundred injected incidents."""

from __future__ import annotations

import random

from inferlab.anomaly.detector import SeriesDetector, Tuning, peer_residuals
from inferlab.anomaly.evaluation import evaluate
from inferlab.anomaly.synthetic import PERIOD, labelled_groups, labelled_series


def test_precision_and_recall_on_hundreds_of_injected_incidents() -> None:
    score = evaluate(labelled_series(2026, 100), labelled_groups(2027, 40), Tuning(), max_latency=2)
    assert score.labelled >= 400
    assert {kind for kind, (labelled, _) in score.by_type.items() if labelled >= 70} == {
        "spike", "level_shift", "drift", "bad_replica"}
    assert score.precision >= 0.9, score
    assert score.recall >= 0.9, score
    assert max(score.latencies) <= 2
    for kind, (labelled, detected) in score.by_type.items():  # no type carried by the others
        assert detected / labelled >= 0.85, (kind, labelled, detected)


def test_the_set_is_deterministic() -> None:
    assert labelled_series(5, 3) == labelled_series(5, 3)
    assert labelled_series(5, 3) != labelled_series(6, 3)


def test_without_seasonal_removal_the_season_is_taken_for_incidents() -> None:
    """The same set judged with no profile: the daily cycle swamps the baseline (why it is removed)."""
    series = labelled_series(2026, 20)
    blind = seasonal = 0
    for one in series:  # the first two days hold no incident: any detection there is a false alarm
        for period, counter in ((0, "blind"), (PERIOD, "seasonal")):
            detector = SeriesDetector(Tuning(period=period, direction=one.direction))
            found = sum(detector.update(at, v) is not None for at, v in enumerate(one.values[:2 * PERIOD]))
            if counter == "blind":
                blind += found
            else:
                seasonal += found
    assert blind > 10 * max(1, seasonal)


def test_a_model_wide_shift_is_not_blamed_on_any_replica() -> None:
    rng = random.Random(3)
    detectors = [SeriesDetector(Tuning(direction="up")) for _ in range(4)]
    found = 0
    for at in range(200):
        shift = 50.0 if 120 <= at < 150 else 0.0  # every replica slows down together
        values = {f"r{i}": 100.0 + shift + rng.gauss(0, 3) for i in range(4)}
        for detector, residual in zip(detectors, peer_residuals(values).values(), strict=True):
            found += detector.update(at, residual) is not None
    assert found == 0


def test_one_slow_replica_among_its_peers_is_found_at_once() -> None:
    rng = random.Random(4)
    detectors = {f"r{i}": SeriesDetector(Tuning(direction="up")) for i in range(4)}
    flagged: dict[str, list[int]] = {name: [] for name in detectors}
    for at in range(200):
        values = {name: 100.0 + rng.gauss(0, 3) + (40.0 if name == "r3" and 120 <= at < 140 else 0.0)
                  for name in detectors}
        for name, residual in peer_residuals(values).items():
            if detectors[name].update(at, residual) is not None:
                flagged[name].append(at)
    assert flagged["r0"] == flagged["r1"] == flagged["r2"] == []
    assert flagged["r3"][0] in (120, 121, 122) and set(flagged["r3"]) >= set(range(122, 140))


def test_too_few_peers_compare_nothing() -> None:
    assert peer_residuals({"a": 1.0, "b": 5.0}) == {}
    assert peer_residuals({"a": 1.0, "b": 2.0, "c": 9.0}) == {"a": -4.5, "b": -3.0, "c": 7.5}
