"""What one evaluation run asks for (:class:`EvalPlan`), and the suites it makes.

The command line validates its options into an ``EvalPlan`` once; :func:`build_suites` turns it
into suites and :meth:`EvalPlan.settings` is what the saved result records, so a result file says
exactly how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.humaneval import HumanEval, Prompting, humaneval_problems
from inferlab.evaluation.infilling import Infilling, InfillMode, infilling_problems
from inferlab.evaluation.multiple_choice import MultipleChoice, Scoring, builtin_questions, load_questions
from inferlab.evaluation.sandbox import Sandbox
from inferlab.evaluation.suite import Suite

__all__ = ["SUITES", "EvalPlan", "build_suites"]

SUITES = ("humaneval", "infilling", "mc")
CODE_SUITES = frozenset({"humaneval", "infilling"})


@dataclass(frozen=True, slots=True)
class EvalPlan:
    models: tuple[str, ...]
    suites: tuple[str, ...] = SUITES
    prompting: Prompting = "completion"
    mc_prompting: Prompting = "chat"
    limit: int | None = None
    samples: int = 1
    ks: tuple[int, ...] = (1,)
    temperature: float = 0.0
    max_tokens: int = 384
    infill_max_tokens: int = 96
    infill_modes: tuple[InfillMode, ...] = ("single", "multi")
    mc_file: Path | None = None
    mc_scoring: Scoring = "auto"
    concurrency: int = 1
    seed: int = 0
    cache_dir: Path | None = None  # None: no cache
    resume: bool = True

    def __post_init__(self) -> None:
        unknown = [name for name in self.suites if name not in SUITES]
        if unknown:
            raise EvaluationError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
        if not self.models:
            raise EvaluationError("give at least one model")
        if self.limit is not None and self.limit < 1:
            raise EvaluationError("--limit must be at least 1")
        if self.concurrency < 1:
            raise EvaluationError("--concurrency must be at least 1")

    @property
    def runs_code(self) -> bool:
        return bool(CODE_SUITES & set(self.suites))

    def settings(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}


def build_suites(plan: EvalPlan, sandbox: Sandbox) -> list[Suite]:
    """The plan's suites, in the order HumanEval, infilling, multiple choice."""
    suites: list[Suite] = []
    code = humaneval_problems()[: plan.limit] if plan.runs_code else []
    if "humaneval" in plan.suites:
        suites.append(HumanEval(code, sandbox, prompting=plan.prompting, samples=plan.samples, ks=plan.ks,
                                temperature=plan.temperature, max_tokens=plan.max_tokens, seed=plan.seed))
    if "infilling" in plan.suites:
        tasks = infilling_problems(code, plan.infill_modes, seed=plan.seed)
        suites.append(Infilling(tasks, sandbox, samples=plan.samples, ks=plan.ks, temperature=plan.temperature,
                                max_tokens=plan.infill_max_tokens, seed=plan.seed))
    if "mc" in plan.suites:
        path = plan.mc_file
        questions = load_questions(path) if path else builtin_questions()
        suites.append(MultipleChoice(questions[: plan.limit], name=f"mc:{path.stem}" if path else "mc:builtin",
                                     prompting=plan.mc_prompting, scoring=plan.mc_scoring, seed=plan.seed))
    return suites
