"""The seam every evaluation suite stands behind: load problems, build requests, score replies.

A suite knows nothing about HTTP, models or caches. The runner asks it for its problems, sends the
:class:`ModelRequest` s it builds for one problem (one per sample) to a model, and hands the
:class:`ModelReply` s back to :meth:`Suite.score`, which returns an :class:`Outcome`. Outcomes are
plain data, so they can be cached, saved and compared across models and runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["ModelReply", "ModelRequest", "Outcome", "Problem", "Route", "Suite"]

Route = Literal["chat", "completions"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: an id unique in its suite and the suite's own data for it."""

    id: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call to a model: the OpenAI route and the JSON body, without ``model``."""

    route: Route
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelReply:
    """What came back from one call. ``error`` is set (and ``text`` empty) when the call failed.

    ``first_token_logprobs`` maps each candidate for the first generated token to its log
    probability, when the server returned log probabilities (else None).
    """

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    first_token_logprobs: Mapping[str, float] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scored problem: its score in [0, 1], the samples behind it, and what it cost.

    ``pass_at`` holds pass@k for every k the suite reports (pass@1 is ``score`` for code suites);
    ``detail`` holds the suite's explanation (the scoring method used, the failure of each sample).
    ``errors`` counts requests that failed: such an outcome is shown but never cached, so a resumed
    run asks again.
    """

    problem_id: str
    score: float
    samples: int
    correct: int
    prompt_tokens: int
    completion_tokens: int
    model_seconds: float
    pass_at: Mapping[int, float] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"problem_id": self.problem_id, "score": self.score, "samples": self.samples,
                "correct": self.correct, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "model_seconds": self.model_seconds,
                "pass_at": {str(k): v for k, v in self.pass_at.items()}, "detail": dict(self.detail),
                "errors": self.errors}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(problem_id=data["problem_id"], score=float(data["score"]), samples=int(data["samples"]),
                   correct=int(data["correct"]), prompt_tokens=int(data["prompt_tokens"]),
                   completion_tokens=int(data["completion_tokens"]), model_seconds=float(data["model_seconds"]),
                   pass_at={int(k): float(v) for k, v in data.get("pass_at", {}).items()},
                   detail=dict(data.get("detail", {})), errors=int(data.get("errors", 0)))


class Suite(Protocol):
    """An evaluation suite. ``name`` is shown in reports; ``fingerprint`` changes whenever anything
    that changes a score changes (problems, prompting, sampling), so cached outcomes are reused only
    for an identical setup."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> Mapping[str, Any]: ...

    def problems(self) -> Sequence[Problem]: ...

    def requests(self, problem: Problem) -> Sequence[ModelRequest]: ...

    async def score(self, problem: Problem, replies: Sequence[ModelReply]) -> Outcome: ...
