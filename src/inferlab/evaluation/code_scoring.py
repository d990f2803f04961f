"""Scoring code suites: run each sample's program in the sandbox, count passes, estimate pass@k.

Shared by HumanEval and infilling. The outcome keeps, per sample, the answer that was run
(``detail.answers``, cut to 2,000 characters) and why a failing one failed (``detail.failures``:
the exception's last line, ``timeout``, or the failed request), so a result file explains itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.estimators import pass_at_k
from inferlab.evaluation.sandbox import Execution, Sandbox
from inferlab.evaluation.suite import ModelReply, Outcome, Problem

__all__ = ["failure_summary", "score_samples"]

ANSWER_CHARS = 2000


def reported_ks(samples: int, ks: Sequence[int]) -> tuple[int, ...]:
    """The k of pass@k a code suite reports (1 always), once checked against its samples per problem."""
    if samples < 1:
        raise EvaluationError("samples must be at least 1")
    if any(k < 1 or k > samples for k in ks):
        raise EvaluationError(f"every k of pass@k must be between 1 and --samples ({samples}), got {list(ks)}")
    return tuple(sorted(set(ks) | {1}))


def failure_summary(execution: Execution) -> str:
    """One line saying why a sample failed (the exception's last line, or how it was stopped)."""
    if execution.status == "timeout":
        return "timeout"
    lines = [line for line in execution.output.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit {execution.exit_code}")[:200]


async def score_samples(problem: Problem, replies: Sequence[ModelReply], sandbox: Sandbox, ks: Sequence[int], *,
                        answer_of: Callable[[ModelReply], str], program_of: Callable[[str], str],
                        extra: Mapping[str, Any] | None = None) -> Outcome:
    """Run ``program_of(answer_of(reply))`` for every successful reply; pass@k over all replies."""
    correct, errors, failures, answers = 0, 0, [], []
    for reply in replies:
        if reply.error is not None:
            errors += 1
            failures.append(f"request failed: {reply.error}"[:200])
            continue
        answer = answer_of(reply)
        answers.append(answer[:ANSWER_CHARS])
        execution = await sandbox.run(program_of(answer))
        if execution.passed:
            correct += 1
        else:
            failures.append(failure_summary(execution))
    samples = len(replies)
    pass_at = {k: pass_at_k(samples, correct, k) for k in ks if k <= samples}
    detail: dict[str, Any] = {**(extra or {}), "answers": answers}
    if failures:
        detail["failures"] = failures
    return Outcome(
        problem_id=problem.id, score=pass_at[1], samples=samples, correct=correct,
        prompt_tokens=sum(r.prompt_tokens for r in replies), completion_tokens=sum(r.completion_tokens for r in replies),
        model_seconds=sum(r.seconds for r in replies), pass_at=pass_at, detail=detail, errors=errors,
    )
