"""Routing code requests by complexity to the small / medium / large tier configured for CodeLab.

A request is reduced to a few features (``CodeTask.features``): how much context it carries, its
task (completion, review, docs), whether it is a multi-line completion, how many lines it is
about, whether its language is one the small models do worse on, and how often completions in
its language were rejected lately. A linear score of those features is cut by two calibrated
thresholds (``Thresholds``, saved as JSON next to the weights): below ``small_below`` → small,
from ``large_from`` → large, medium between. The same thresholds give the same decisions, always
(a pure function of the request and the saved file).

Overrides: a request's ``model`` or ``tier`` wins; ``overrides`` maps a decided tier to another
(e.g. send medium to large while the medium model is down).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from inferlab.errors import InvalidRequest

Kind = Literal["completion", "review", "docs"]
TIERS = ("small", "medium", "large")
FEATURES = ("log_context", "review", "docs", "multi_line", "log_lines", "hard_language", "rejections")
# Languages whose completions small code models get wrong more often (fewer training tokens).
HARD_LANGUAGES = frozenset({"rust", "scala", "haskell", "ocaml", "cpp", "kotlin", "swift", "sql", "other"})


@dataclass(frozen=True, slots=True)
class CodeTask:
    kind: Kind
    language: str
    context_chars: int
    lines: int
    multi_line: bool = False
    tier: str | None = None
    model: str | None = None

    def features(self, acceptance: float | None = None) -> dict[str, float]:
        return {
            "log_context": math.log10(1 + self.context_chars),
            "review": 1.0 if self.kind == "review" else 0.0,
            "docs": 1.0 if self.kind == "docs" else 0.0,
            "multi_line": 1.0 if self.multi_line else 0.0,
            "log_lines": math.log10(1 + self.lines),
            "hard_language": 1.0 if self.language in HARD_LANGUAGES else 0.0,
            "rejections": 1.0 - acceptance if acceptance is not None else 0.5,
        }

    @classmethod
    def of_completion(cls, request: Any) -> CodeTask:
        context = len(request.prefix) + len(request.suffix) + sum(len(f.text) for f in request.declarations + request.snippets)
        multi = not request.single_line
        return cls("completion", request.language, context, request.prefix.count("\n") + 1 if multi else 1, multi,
                   request.tier, request.model)

    @classmethod
    def of_review(cls, request: Any) -> CodeTask:
        changed = sum(len(f.added) for f in request.diff.files.values())
        return cls("review", _language_of_diff(request.diff.files), len(request.diff.numbered), changed, True,
                   request.tier, request.model)

    @classmethod
    def of_docs(cls, request: Any) -> CodeTask:
        return cls("docs", request.language, len(request.code), request.code.count("\n") + 1, True, request.tier,
                   request.model)


def _language_of_diff(files: Mapping[str, Any]) -> str:
    from inferlab.code.chunking import language_of

    languages = [language_of(path) for path in files]
    return next((lang for lang in languages if lang), "other")


@dataclass(frozen=True, slots=True)
class Thresholds:
    weights: dict[str, float]
    small_below: float
    large_from: float
    version: str = "default"

    def score(self, features: Mapping[str, float]) -> float:
        return sum(self.weights.get(name, 0.0) * value for name, value in features.items())

    def tier(self, score: float) -> str:
        if score < self.small_below:
            return "small"
        return "large" if score >= self.large_from else "medium"

    def save(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        data = orjson.loads(path.read_bytes())
        return cls({k: float(v) for k, v in data["weights"].items()}, float(data["small_below"]),
                   float(data["large_from"]), str(data.get("version", path.name)))


# The calibration shipped (bench/codelab_routing.py fits it on data/routing_set.jsonl).
SHIPPED_THRESHOLDS = Path(__file__).parent / "data" / "routing_thresholds.json"
# Where calibration starts: weights chosen by hand, thresholds that send short single-line
# completions to the small tier and reviews of large diffs to the large one.
DEFAULT_THRESHOLDS = Thresholds(
    weights={"log_context": 1.0, "review": 1.5, "docs": 0.8, "multi_line": 1.0, "log_lines": 0.8,
             "hard_language": 0.7, "rejections": 1.0},
    small_below=4.3, large_from=6.3,
)


@dataclass(frozen=True, slots=True)
class Decision:
    tier: str
    model: str
    score: float | None
    reason: str
    features: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "model": self.model, "score": None if self.score is None else round(self.score, 4),
                "reason": self.reason}


class ComplexityRouter:
    def __init__(self, thresholds: Thresholds, tiers: Mapping[Any, str], *, fallback: str | None,
                 acceptance: Callable[[str], float | None] = lambda _: None,
                 overrides: Mapping[Any, str] | None = None) -> None:
        self.thresholds = thresholds
        self._tiers = dict(tiers)
        self._fallback = fallback
        self._acceptance = acceptance
        self._overrides = dict(overrides or {})

    def _model_of(self, tier: str) -> str | None:
        """The tier's model, else the nearest configured tier's (larger first), else the fallback."""
        order = {"small": ("small", "medium", "large"), "medium": ("medium", "large", "small"),
                 "large": ("large", "medium", "small")}[tier]
        return next((self._tiers[t] for t in order if t in self._tiers), self._fallback)

    def decide(self, task: CodeTask) -> Decision:
        if task.model:
            return Decision("request", task.model, None, "model named by the request")
        if task.tier is not None:
            if task.tier not in TIERS:
                raise InvalidRequest("Invalid value for 'tier': expected small, medium or large", param="tier",
                                     code="invalid_value")
            if task.tier not in self._tiers:
                raise InvalidRequest(f"CodeLab has no '{task.tier}' tier configured", param="tier", code="invalid_value")
            return Decision(task.tier, self._tiers[task.tier], None, "tier named by the request")
        features = task.features(self._acceptance(task.language))
        score = self.thresholds.score(features)
        tier = self.thresholds.tier(score)
        reason = f"score {score:.3f} ({self.thresholds.version})"
        if tier in self._overrides:
            reason += f"; {tier} overridden to {self._overrides[tier]}"
            tier = self._overrides[tier]
        model = self._model_of(tier)
        if model is None:
            raise InvalidRequest("No model is configured for CodeLab", param="model")
        return Decision(tier, model, score, reason, features)
