"""The complexity router: decisions reproducible from the saved thresholds, overrides."""

from __future__ import annotations

import json

import pytest

from inferlab.code.calibration import calibrate, decisions, load_set, report
from inferlab.code.routing import SHIPPED_THRESHOLDS, CodeTask, ComplexityRouter, Thresholds
from inferlab.errors import InvalidRequest

DATA = SHIPPED_THRESHOLDS.parent
TIERS = {"small": "s-model", "medium": "m-model", "large": "l-model"}


def test_decisions_are_reproducible_from_the_saved_thresholds() -> None:
    rows = load_set(DATA / "routing_set.jsonl")
    saved = Thresholds.load(SHIPPED_THRESHOLDS)
    recorded = json.loads((DATA / "routing_report.json").read_text())
    # the same set and weights calibrate to the very thresholds saved...
    again = calibrate(rows, saved.weights, version=saved.version)
    assert (again.small_below, again.large_from) == (saved.small_below, saved.large_from)
    # ...and the router, built from the saved file alone, decides as the calibration recorded
    router = ComplexityRouter(Thresholds.load(SHIPPED_THRESHOLDS), TIERS, fallback=None)
    routed = [router.decide(row.task).tier for row in rows]
    assert routed == decisions(saved, rows) == recorded["decisions"]
    assert report(saved, rows)["router"]["accuracy"] == recorded["router"]["accuracy"]


def test_the_calibrated_router_beats_its_starting_point_and_is_cheaper_than_always_large() -> None:
    recorded = json.loads((DATA / "routing_report.json").read_text())
    assert recorded["router"]["accuracy"] > recorded["always_large"]["accuracy"]
    assert recorded["router"]["accuracy"] >= recorded["default_thresholds"]["accuracy"]
    assert recorded["saved_usd_per_1000"] > 0


def test_overrides_per_request_and_per_tier() -> None:
    thresholds = Thresholds.load(SHIPPED_THRESHOLDS)
    short = CodeTask("completion", "python", 200, 1)
    assert ComplexityRouter(thresholds, TIERS, fallback=None).decide(short).tier == "small"
    pinned = ComplexityRouter(thresholds, TIERS, fallback=None, overrides={"small": "large"}).decide(short)
    assert (pinned.tier, pinned.model) == ("large", "l-model") and "overridden" in pinned.reason
    router = ComplexityRouter(thresholds, TIERS, fallback=None)
    assert router.decide(CodeTask("completion", "python", 200, 1, tier="medium")).model == "m-model"
    assert router.decide(CodeTask("completion", "python", 200, 1, model="x")).model == "x"
    with pytest.raises(InvalidRequest):
        ComplexityRouter(thresholds, {"large": "l"}, fallback=None).decide(CodeTask("docs", "go", 9, 1, tier="small"))
    assert ComplexityRouter(thresholds, {"large": "l"}, fallback=None).decide(short).model == "l"  # nearest tier


def test_rejections_in_a_language_push_towards_larger_tiers() -> None:
    thresholds = Thresholds.load(SHIPPED_THRESHOLDS)
    task = CodeTask("completion", "python", 3000, 6, multi_line=True)
    liked = ComplexityRouter(thresholds, TIERS, fallback=None, acceptance=lambda _: 1.0).decide(task)
    disliked = ComplexityRouter(thresholds, TIERS, fallback=None, acceptance=lambda _: 0.0).decide(task)
    assert disliked.score is not None and liked.score is not None and disliked.score > liked.score
