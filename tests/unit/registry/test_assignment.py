"""Assignment by a stable hash: sticky per unit, monotone in the weight, proportional to it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferlab.registry.assignment import assign, bucket

units = st.text(min_size=1, max_size=40)
salts = st.text(min_size=1, max_size=16)
weights = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(units, salts, weights)
def test_a_unit_always_sees_the_same_variant(unit: str, salt: str, weight: float) -> None:
    assert len({assign(unit, salt, weight) for _ in range(3)}) == 1
    assert 0.0 <= bucket(unit, salt) < 1.0


@given(units, salts, weights, weights)
def test_raising_the_weight_only_moves_units_to_the_candidate(unit: str, salt: str, low: float, high: float) -> None:
    low, high = sorted((low, high))
    if assign(unit, salt, low) == "candidate":
        assert assign(unit, salt, high) == "candidate"
    if assign(unit, salt, high) == "control":
        assert assign(unit, salt, low) == "control"


@given(salts, st.floats(min_value=0.05, max_value=0.95))
def test_the_candidate_gets_its_weight_of_the_units(salt: str, weight: float) -> None:
    share = sum(assign(f"tenant-{i}", salt, weight) == "candidate" for i in range(4000)) / 4000
    assert abs(share - weight) < 0.04  # > 5 standard deviations at 4000 units


def test_the_extremes_and_a_new_salt() -> None:
    assert all(assign(f"u{i}", "s", 0.0) == "control" for i in range(500))
    assert all(assign(f"u{i}", "s", 1.0) == "candidate" for i in range(500))
    moved = sum(assign(f"u{i}", "s1", 0.5) != assign(f"u{i}", "s2", 0.5) for i in range(2000))
    assert 800 < moved < 1200  # a new salt reshuffles: about half change sides
