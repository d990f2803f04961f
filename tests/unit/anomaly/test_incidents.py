"""Detections → incidents: one per (kind, subject) while it lasts; the quiet period closes it, and a
detector flickering inside it does not open (alert) a second one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferlab.anomaly.detector import Detection
from inferlab.anomaly.incidents import IncidentTracker, Key, Subject

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SLOW = Key("ttft_ms", Subject("model", "m", "m"))
R2 = Key("replica_ttft_ms", Subject("replica", "r2", "m"))


def hit(z: float = 5.0) -> Detection:
    return Detection("level_shift", z, 300.0, 100.0, 10.0, 0.0)


def run(tracker: IncidentTracker, pattern: list[set[Key]], z: float = 5.0) -> list[tuple[int, str, str]]:
    events = []
    for i, keys in enumerate(pattern):
        changes = tracker.step(T0 + timedelta(minutes=i), {k: hit(z + i) for k in keys})
        events += [(i, "opened", c.key) for c in changes.opened] + [(i, "closed", c.key) for c in changes.closed]
    return events


def test_a_flickering_detection_inside_the_quiet_period_is_one_incident() -> None:
    tracker = IncidentTracker(quiet_intervals=3)
    pattern = [{SLOW}, set(), {SLOW}, set(), set(), {SLOW}, set(), set(), set(), set()]
    assert run(tracker, pattern) == [(0, "opened", "ttft_ms:model=m"), (8, "closed", "ttft_ms:model=m")]


def test_after_the_quiet_period_a_new_detection_is_a_new_incident() -> None:
    tracker = IncidentTracker(quiet_intervals=2)
    assert run(tracker, [{SLOW}, set(), set(), {SLOW}, set(), set()]) == [
        (0, "opened", "ttft_ms:model=m"), (2, "closed", "ttft_ms:model=m"),
        (3, "opened", "ttft_ms:model=m"), (5, "closed", "ttft_ms:model=m")]


def test_subjects_and_kinds_are_deduplicated_apart() -> None:
    tracker = IncidentTracker(quiet_intervals=1)
    events = run(tracker, [{SLOW, R2}, {SLOW, R2}, {R2}, set()])
    assert sorted(e for e in events if e[1] == "opened") == [(0, "opened", "replica_ttft_ms:replica=m/r2"),
                                                               (0, "opened", "ttft_ms:model=m")]
    assert sorted(e for e in events if e[1] == "closed") == [(2, "closed", "ttft_ms:model=m"),
                                                               (3, "closed", "replica_ttft_ms:replica=m/r2")]


def test_the_incident_keeps_its_strongest_and_latest_evidence() -> None:
    tracker = IncidentTracker(quiet_intervals=5)
    tracker.step(T0, {SLOW: hit(4.0)})
    tracker.step(T0 + timedelta(minutes=1), {SLOW: hit(9.0)})
    tracker.step(T0 + timedelta(minutes=2), {SLOW: hit(-6.0)})
    (incident,) = tracker.open
    assert incident.detections == 3 and incident.peak["z"] == 9.0 and incident.latest["z"] == -6.0
    assert incident.opened_at == T0 and incident.last_seen_at == T0 + timedelta(minutes=2)


def test_an_adopted_incident_is_not_opened_again() -> None:
    first = IncidentTracker(quiet_intervals=3)
    (opened,) = first.step(T0, {SLOW: hit()}).opened
    second = IncidentTracker(quiet_intervals=3)
    second.adopt(opened)
    changes = second.step(T0 + timedelta(minutes=1), {SLOW: hit()})
    assert changes.opened == [] and [i.id for i in changes.updated] == [opened.id]


def test_a_quiet_period_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="quiet_intervals"):
        IncidentTracker(quiet_intervals=0)
