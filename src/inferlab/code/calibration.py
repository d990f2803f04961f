"""Calibrating the complexity router's two thresholds on a labelled set, and what it saves.

Each labelled row is a code request reduced to its task (``CodeTask``) and the smallest tier that
serves it well (``label``). The weights stay as given; the thresholds are searched over the
midpoints between consecutive distinct scores of the set, keeping the pair with the highest
accuracy (ties: the cheaper decisions, then the smaller thresholds), so calibration is
deterministic: the same set and weights give the same thresholds, which give the same decisions.

Scores reported: accuracy (decided tier = label), sufficiency (decided tier ≥ label: the request
was not under-served) and cost per 1,000 requests, against always sending everything to large.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from inferlab.code.routing import TIERS, CodeTask, Thresholds

RANK = {tier: index for index, tier in enumerate(TIERS)}


@dataclass(frozen=True, slots=True)
class LabelledTask:
    task: CodeTask
    label: str
    prompt_tokens: int
    output_tokens: int
    source: str = ""
    acceptance: float | None = None

    def to_json(self) -> dict[str, Any]:
        t = self.task
        return {"kind": t.kind, "language": t.language, "context_chars": t.context_chars, "lines": t.lines,
                "multi_line": t.multi_line, "label": self.label, "prompt_tokens": self.prompt_tokens,
                "output_tokens": self.output_tokens, "acceptance": self.acceptance, "source": self.source}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> LabelledTask:
        task = CodeTask(row["kind"], row["language"], int(row["context_chars"]), int(row["lines"]), bool(row["multi_line"]))
        return cls(task, row["label"], int(row["prompt_tokens"]), int(row["output_tokens"]), row.get("source", ""),
                   row.get("acceptance"))


def load_set(path: Path) -> list[LabelledTask]:
    return [LabelledTask.from_json(orjson.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def save_set(rows: Sequence[LabelledTask], path: Path) -> None:
    path.write_text("".join(orjson.dumps(row.to_json()).decode() + "\n" for row in rows))


def scores(weights: Mapping[str, float], rows: Sequence[LabelledTask]) -> list[float]:
    probe = Thresholds(dict(weights), 0.0, 0.0)
    return [round(probe.score(row.task.features(row.acceptance)), 9) for row in rows]


OVER_SERVED = 0.4  # an over-served request is served well, at a higher cost: worth part of a right one


def calibrate(rows: Sequence[LabelledTask], weights: Mapping[str, float], *, version: str) -> Thresholds:
    """The thresholds for these weights maximising right decisions + 0.4 x over-served ones
    (an under-served request counts nothing), then the cheaper decisions."""
    return _thresholds(rows, weights, version)[0]


def fit(rows: Sequence[LabelledTask], weights: Mapping[str, float], *, version: str, rounds: int = 3) -> Thresholds:
    """Weights too: each in turn scaled by a few factors, kept when the objective improves
    (coordinate search from ``weights``; deterministic), thresholds recalibrated each time."""
    best, value = _thresholds(rows, weights, version)
    for _ in range(rounds):
        for name in sorted(best.weights):
            for factor in (0.0, 0.25, 0.5, 0.75, 1.5, 2.0, 3.0):
                trial = {**best.weights, name: round(best.weights[name] * factor, 6)}
                candidate, score = _thresholds(rows, trial, version)
                if score > value + 1e-9:
                    best, value = candidate, score
    return best


def _thresholds(rows: Sequence[LabelledTask], weights: Mapping[str, float], version: str) -> tuple[Thresholds, float]:
    values = scores(weights, rows)
    distinct = sorted(set(values))
    cuts = [distinct[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(distinct)] + [distinct[-1] + 1.0]
    # below[c][tier]: rows of that label whose score is under cut c (prefix sums over the cuts)
    below = [[0, 0, 0]]
    for value in distinct:
        counts = list(below[-1])
        for v, row in zip(values, rows, strict=True):
            if v == value:
                counts[RANK[row.label]] += 1
        below.append(counts)
    total = below[-1]
    n = len(rows)
    best: tuple[float, int, float, float] | None = None
    for i, low in enumerate(cuts):
        for j in range(i, len(cuts)):
            small_ok = below[i][0]
            medium_ok = below[j][1] - below[i][1]
            large_ok = total[2] - below[j][2]
            over = (below[j][0] - below[i][0]) + (total[0] - below[j][0]) + (total[1] - below[j][1])
            in_small, in_large = sum(below[i]), n - sum(below[j])
            cost = (n - in_small - in_large) + 2 * in_large
            objective = small_ok + medium_ok + large_ok + OVER_SERVED * over
            key = (-objective, cost, low, cuts[j])
            if best is None or key < best:
                best = key
    assert best is not None
    return Thresholds(dict(weights), best[2], best[3], version), -best[0]


def decisions(thresholds: Thresholds, rows: Sequence[LabelledTask]) -> list[str]:
    return [thresholds.tier(thresholds.score(row.task.features(row.acceptance))) for row in rows]


def report(thresholds: Thresholds, rows: Sequence[LabelledTask],
           usd_per_request: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """Accuracy and sufficiency of the router and of always-large; cost per 1,000 requests when
    ``usd_per_request[tier][kind]`` is given (the planning toolkit's price of each tier's deployment)."""
    decided = decisions(thresholds, rows)
    n = len(rows)
    result: dict[str, Any] = {
        "rows": n, "thresholds": {"small_below": thresholds.small_below, "large_from": thresholds.large_from},
        "labels": {tier: sum(row.label == tier for row in rows) for tier in TIERS},
        "decided": {tier: decided.count(tier) for tier in TIERS},
        "router": {"accuracy": sum(d == r.label for d, r in zip(decided, rows, strict=True)) / n,
                   "sufficient": sum(RANK[d] >= RANK[r.label] for d, r in zip(decided, rows, strict=True)) / n},
        "always_large": {"accuracy": sum(r.label == "large" for r in rows) / n, "sufficient": 1.0},
    }
    if usd_per_request is not None:
        router = sum(usd_per_request[d][r.task.kind] for d, r in zip(decided, rows, strict=True)) / n * 1000
        large = sum(usd_per_request["large"][r.task.kind] for r in rows) / n * 1000
        result["router"]["usd_per_1000"] = router
        result["always_large"]["usd_per_1000"] = large
        result["saved_usd_per_1000"] = large - router
        result["saved_fraction"] = (large - router) / large if large else 0.0
    return result
