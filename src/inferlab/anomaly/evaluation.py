"""The detector's score on a labelled set (``synthetic``): precision, recall, detection latency.

Each series (and each replica group, through ``peer_residuals``) runs through a ``SeriesDetector``
and an ``IncidentTracker``, as the service runs them. Then:

- a labelled incident is **detected** when an incident of its series opens between its ``start``
  and ``detectable + max_latency`` (an early alarm on a drift counts; one later than that does not);
- an opened incident is **true** when it opens between some label's ``start`` and its ``end`` plus
  the quiet period (the same trouble, still settling), **false** otherwise;
- precision = true opened ÷ opened; recall = detected ÷ labelled; latency = opening − ``detectable``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from inferlab.anomaly.detector import SeriesDetector, Tuning, peer_residuals
from inferlab.anomaly.incidents import IncidentTracker, Key, Subject
from inferlab.anomaly.synthetic import PERIOD, Label, PeerGroup, Series

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=15)


@dataclass
class Score:
    labelled: int = 0
    detected: int = 0
    opened: int = 0
    true_opened: int = 0
    latencies: list[int] = field(default_factory=list)
    by_type: dict[str, list[int]] = field(default_factory=dict)  # type → [labelled, detected]
    updates: int = 0
    seconds: float = 0.0

    @property
    def precision(self) -> float:
        return self.true_opened / self.opened if self.opened else 1.0

    @property
    def recall(self) -> float:
        return self.detected / self.labelled if self.labelled else 1.0

    def add(self, other: Score) -> None:
        self.labelled += other.labelled
        self.detected += other.detected
        self.opened += other.opened
        self.true_opened += other.true_opened
        self.latencies += other.latencies
        self.updates += other.updates
        self.seconds += other.seconds
        for kind, (labelled, detected) in other.by_type.items():
            mine = self.by_type.setdefault(kind, [0, 0])
            mine[0] += labelled
            mine[1] += detected


def _openings(values: Sequence[float], tuning: Tuning, quiet: int) -> tuple[list[int], int, float]:
    detector = SeriesDetector(tuning)
    tracker = IncidentTracker(quiet)
    key = Key("value", Subject("model", "m"))
    opened = []
    started = time.perf_counter()
    for at, value in enumerate(values):
        found = detector.update(at, value)
        changes = tracker.step(EPOCH + at * STEP, {key: found} if found is not None else {})
        if changes.opened:
            opened.append(at)
    return opened, len(values), time.perf_counter() - started


def _score(opened: list[int], labels: list[Label], quiet: int, max_latency: int) -> Score:
    score = Score(labelled=len(labels), opened=len(opened))
    for label in labels:
        hits = [at for at in opened if label.start <= at <= label.detectable + max_latency]
        counts = score.by_type.setdefault(label.type, [0, 0])
        counts[0] += 1
        if hits:
            score.detected += 1
            counts[1] += 1
            score.latencies.append(max(0, hits[0] - label.detectable))
    score.true_opened = sum(any(label.start <= at <= label.end + quiet for label in labels) for at in opened)
    return score


def evaluate(series: Sequence[Series], groups: Sequence[PeerGroup], tuning: Tuning, *, quiet: int = 4,
             max_latency: int = 2) -> Score:
    total = Score()
    for one in series:
        opened, updates, seconds = _openings(one.values, replace(tuning, direction=one.direction, period=PERIOD), quiet)
        score = _score(opened, one.labels, quiet, max_latency)
        score.updates, score.seconds = updates, seconds
        total.add(score)
    for group in groups:
        names = [f"r{i}" for i in range(len(group.replicas))]
        length = len(group.replicas[0])
        differenced = {name: [peer_residuals({n: r[at] for n, r in zip(names, group.replicas, strict=True)})[name]
                              for at in range(length)] for name in names}
        for i, name in enumerate(names):
            opened, updates, seconds = _openings(differenced[name], replace(tuning, direction="up", period=0), quiet)
            score = _score(opened, group.labels if i == group.bad else [], quiet, max_latency)
            score.updates, score.seconds = updates, seconds
            total.add(score)
    return total
