"""Model quality evaluation (``inferlab eval``): how good, next to ``inferlab bench``'s how fast.

Suites stand behind one protocol (:class:`Suite`): HumanEval, HumanEval infilling and multiple
choice. Generated code runs only in the :class:`Sandbox`, never in this process. The runner sends
requests to any OpenAI-compatible server, caches finished problems, and summarises each model and
suite with a confidence interval; :mod:`~inferlab.evaluation.pricing` adds the planning toolkit's
cost per 1,000 problems.
"""

from inferlab.evaluation.cache import OutcomeCache
from inferlab.evaluation.client import ModelClient
from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.estimators import Score, bootstrap_interval, pass_at_k, summarise, wilson_interval
from inferlab.evaluation.humaneval import HumanEval, humaneval_problems, humaneval_program
from inferlab.evaluation.infilling import Infilling, infill_program, infilling_problems
from inferlab.evaluation.multiple_choice import (
    MultipleChoice,
    builtin_questions,
    load_questions,
    parse_questions,
)
from inferlab.evaluation.plan import EvalPlan, build_suites
from inferlab.evaluation.pricing import Deployment, parse_deployment, price_result
from inferlab.evaluation.results import EvalRun, SuiteResult, summarise_outcomes
from inferlab.evaluation.runner import evaluate, evaluate_suite
from inferlab.evaluation.sandbox import Execution, Isolation, Sandbox, SandboxLimits, SandboxUnavailable
from inferlab.evaluation.suite import ModelReply, ModelRequest, Outcome, Problem, Suite

__all__ = [
    "Deployment",
    "EvalPlan",
    "EvalRun",
    "EvaluationError",
    "Execution",
    "HumanEval",
    "Infilling",
    "Isolation",
    "ModelClient",
    "ModelReply",
    "ModelRequest",
    "MultipleChoice",
    "Outcome",
    "OutcomeCache",
    "Problem",
    "Sandbox",
    "SandboxLimits",
    "SandboxUnavailable",
    "Score",
    "Suite",
    "SuiteResult",
    "bootstrap_interval",
    "build_suites",
    "builtin_questions",
    "evaluate",
    "evaluate_suite",
    "humaneval_problems",
    "humaneval_program",
    "infill_program",
    "infilling_problems",
    "load_questions",
    "parse_deployment",
    "parse_questions",
    "pass_at_k",
    "price_result",
    "summarise",
    "summarise_outcomes",
    "wilson_interval",
]
