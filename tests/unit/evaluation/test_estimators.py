"""pass@k and the intervals against values worked out by hand."""

from __future__ import annotations

from math import comb

import pytest

from inferlab.evaluation.estimators import bootstrap_interval, pass_at_k, summarise, wilson_interval


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 0, 1, 0.0),
        (1, 1, 1, 1.0),
        (5, 2, 1, 2 / 5),  # pass@1 is the fraction correct
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (20, 1, 10, 1 - 92378 / 184756),  # 1 - C(19,10)/C(20,10) = 0.5
        (5, 4, 2, 1.0),  # fewer failures than k: some drawn sample always passes
        (4, 0, 4, 0.0),
        (3, 3, 2, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_the_binomial_formula_everywhere() -> None:
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1.0 if n - c < k else 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(0, 0, 1), (3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_refuses_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        pass_at_k(n, c, k)


def test_wilson_interval_known_values() -> None:
    # z = 1.959964: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634], 10/10 -> [0.7225, 1]
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow = wilson_interval(50, 100, confidence=0.5)
    assert narrow[0] > 0.45 and narrow[1] < 0.55


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    values = [(i * 7 % 11) / 13 for i in range(25)]
    first = bootstrap_interval(values, seed=3)
    assert first == bootstrap_interval(values, seed=3)
    assert first != bootstrap_interval(values, seed=4)
    assert first[0] < sum(values) / len(values) < first[1]
    assert bootstrap_interval([0.5] * 5) == (0.5, 0.5)


def test_summarise_picks_wilson_for_zero_one_scores_and_bootstrap_otherwise() -> None:
    binary = summarise([1.0, 0.0, 0.0, 1.0])
    assert binary.method == "wilson" and binary.value == 0.5 and binary.problems == 4
    assert (binary.low, binary.high) == pytest.approx(wilson_interval(2, 4))
    graded = summarise([1.0, 0.5, 0.0, 0.3])
    assert graded.method == "bootstrap" and graded.value == pytest.approx(0.45)
    assert graded.low <= graded.value <= graded.high


def test_wilson_interval_holds_its_point_at_the_edges() -> None:
    for total in (1, 3, 7, 164):
        assert wilson_interval(0, total)[0] == 0.0
        assert wilson_interval(total, total)[1] == 1.0
