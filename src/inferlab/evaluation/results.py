"""What an evaluation run found, as plain data: per model and suite, and per problem.

An :class:`EvalRun` is saved as JSON (``inferlab eval --json``) and read back with
:meth:`EvalRun.load`. Besides the summary (score with interval, tokens, time, cost) it keeps
every problem's :class:`Outcome`, so a router can calibrate itself from it: for each problem,
which models solved it and how long its prompt was (:meth:`EvalRun.problem_matrix`) — the
data CodeLab's complexity router needs to set its thresholds ("route to the small model when it
solves what the large one solves").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.estimators import Score, summarise
from inferlab.evaluation.suite import Outcome

__all__ = ["EvalRun", "SuiteResult", "summarise_outcomes"]

FORMAT = "inferlab-eval/1"


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """One model on one suite."""

    model: str
    suite: str
    score: Score
    pass_at: Mapping[int, float]
    outcomes: tuple[Outcome, ...]
    cached: int = 0
    wall_seconds: float = 0.0
    cost_per_1k_problems: float | None = None
    cost_note: str | None = None

    @property
    def problems(self) -> int:
        return len(self.outcomes)

    @property
    def errors(self) -> int:
        return sum(outcome.errors for outcome in self.outcomes)

    @property
    def requests(self) -> int:
        return sum(outcome.samples for outcome in self.outcomes)

    @property
    def prompt_tokens(self) -> int:
        return sum(outcome.prompt_tokens for outcome in self.outcomes)

    @property
    def completion_tokens(self) -> int:
        return sum(outcome.completion_tokens for outcome in self.outcomes)

    @property
    def model_seconds(self) -> float:
        return sum(outcome.model_seconds for outcome in self.outcomes)

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of request time (one request's speed, prefill included)."""
        seconds = self.model_seconds
        return self.completion_tokens / seconds if seconds else 0.0

    @property
    def scoring(self) -> dict[str, int]:
        """How many outcomes each scoring method decided (multiple-choice suites), else empty."""
        return dict(Counter(str(o.detail["scoring"]) for o in self.outcomes if "scoring" in o.detail))

    def with_cost(self, usd: float | None, note: str | None) -> SuiteResult:
        return replace(self, cost_per_1k_problems=usd, cost_note=note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "suite": self.suite, "score": self.score.to_dict(),
            "pass_at": {str(k): v for k, v in self.pass_at.items()}, "problems": self.problems,
            "cached": self.cached, "errors": self.errors, "requests": self.requests,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "model_seconds": self.model_seconds, "wall_seconds": self.wall_seconds,
            "tokens_per_s": self.tokens_per_s, "scoring": self.scoring,
            "cost_per_1k_problems_usd": self.cost_per_1k_problems, "cost_note": self.cost_note,
            "outcomes": [outcome.to_dict() for outcome in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteResult:
        score = data["score"]
        return cls(
            model=data["model"], suite=data["suite"],
            score=Score(score["value"], score["low"], score["high"], score["problems"], score["interval"],
                        score.get("confidence", 0.95)),
            pass_at={int(k): float(v) for k, v in data.get("pass_at", {}).items()},
            outcomes=tuple(Outcome.from_dict(o) for o in data.get("outcomes", [])),
            cached=int(data.get("cached", 0)), wall_seconds=float(data.get("wall_seconds", 0.0)),
            cost_per_1k_problems=data.get("cost_per_1k_problems_usd"), cost_note=data.get("cost_note"),
        )


def summarise_outcomes(model: str, suite: str, outcomes: list[Outcome], *, cached: int = 0,
                       wall_seconds: float = 0.0, confidence: float = 0.95, seed: int = 0) -> SuiteResult:
    """The summary of one model's outcomes on one suite: mean score, interval, mean pass@k."""
    ks = sorted({k for outcome in outcomes for k in outcome.pass_at})
    pass_at = {k: sum(o.pass_at.get(k, 0.0) for o in outcomes) / len(outcomes) for k in ks} if outcomes else {}
    score = summarise([outcome.score for outcome in outcomes], confidence, seed=seed)
    return SuiteResult(model, suite, score, pass_at, tuple(outcomes), cached, wall_seconds)


@dataclass(frozen=True, slots=True)
class EvalRun:
    """A whole ``inferlab eval`` run: where, with what settings, how isolated, and each result."""

    base_url: str
    started_at: str
    settings: Mapping[str, Any]
    isolation: str
    results: tuple[SuiteResult, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "base_url": self.base_url, "started_at": self.started_at,
                "settings": dict(self.settings), "isolation": self.isolation,
                "results": [result.to_dict() for result in self.results]}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")

    @classmethod
    def load(cls, path: Path) -> EvalRun:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise EvaluationError(f"cannot read evaluation results {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise EvaluationError(f"{path} is not an inferlab eval result ({FORMAT})")
        return cls(base_url=data["base_url"], started_at=data["started_at"], settings=data["settings"],
                   isolation=data["isolation"], results=tuple(SuiteResult.from_dict(r) for r in data["results"]))

    def problem_matrix(self, suite: str) -> dict[str, dict[str, Any]]:
        """For each problem of ``suite``: each model's score on it and the smallest prompt size seen."""
        matrix: dict[str, dict[str, Any]] = {}
        for result in self.results:
            if result.suite != suite:
                continue
            for outcome in result.outcomes:
                row = matrix.setdefault(outcome.problem_id, {"scores": {}, "prompt_tokens": None})
                row["scores"][result.model] = outcome.score
                per_request = outcome.prompt_tokens // max(1, outcome.samples)
                if per_request and (row["prompt_tokens"] is None or per_request < row["prompt_tokens"]):
                    row["prompt_tokens"] = per_request
        return matrix
