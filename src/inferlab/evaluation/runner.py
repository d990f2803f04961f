"""Run suites against models: send each problem's requests, score the replies, cache, summarise.

At most ``concurrency`` requests are in flight at once, whatever the number of samples per problem
(so a server with N slots and ``concurrency`` N never queues); a problem is scored as soon as its
replies are in, while later requests go on (the sandbox has its own limit). With a cache, problems
already finished for the same server, model and suite setup are taken from it and only the rest
are asked (``resume``). Order and seeds are fixed, so the requests of a run repeat exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from inferlab.evaluation.cache import OutcomeCache
from inferlab.evaluation.results import SuiteResult, summarise_outcomes
from inferlab.evaluation.suite import ModelReply, ModelRequest, Outcome, Problem, Suite

__all__ = ["ModelSender", "OnOutcome", "evaluate", "evaluate_suite"]

#: called after each problem: model, suite name, the outcome, and whether it came from the cache
OnOutcome = Callable[[str, str, Outcome, bool], None]


class ModelSender(Protocol):
    """What the runner needs from a client (:class:`~inferlab.evaluation.client.ModelClient` is one)."""

    @property
    def base_url(self) -> str: ...

    async def send(self, model: str, request: ModelRequest) -> ModelReply: ...


def cache_key(sender: ModelSender, model: str, suite: Suite) -> dict[str, Any]:
    return {"base_url": sender.base_url, "model": model, **suite.fingerprint}


async def _solve(sender: ModelSender, model: str, suite: Suite, problem: Problem, gate: asyncio.Semaphore) -> Outcome:
    async def send(request: ModelRequest) -> ModelReply:
        async with gate:
            return await sender.send(model, request)

    replies = await asyncio.gather(*(send(request) for request in suite.requests(problem)))
    return await suite.score(problem, replies)


async def evaluate_suite(
    sender: ModelSender, model: str, suite: Suite, *, concurrency: int = 1, cache: OutcomeCache | None = None,
    resume: bool = True, on_outcome: OnOutcome | None = None, seed: int = 0,
) -> SuiteResult:
    """One model on one suite."""
    problems = suite.problems()
    key = cache_key(sender, model, suite)
    done = cache.load(key) if cache is not None and resume else {}
    outcomes: dict[str, Outcome] = {}
    for problem in problems:
        if problem.id in done:
            outcomes[problem.id] = done[problem.id]
            if on_outcome is not None:
                on_outcome(model, suite.name, done[problem.id], True)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(problem: Problem) -> None:
        outcome = await _solve(sender, model, suite, problem, gate)
        if cache is not None:
            cache.save(key, outcome)
        outcomes[problem.id] = outcome
        if on_outcome is not None:
            on_outcome(model, suite.name, outcome, False)

    started = time.perf_counter()
    await asyncio.gather(*(one(problem) for problem in problems if problem.id not in done))
    ordered = [outcomes[problem.id] for problem in problems]
    return summarise_outcomes(model, suite.name, ordered, cached=len(done),
                              wall_seconds=time.perf_counter() - started, seed=seed)


async def evaluate(
    sender: ModelSender, models: Sequence[str], suites: Sequence[Suite], *, concurrency: int = 1,
    cache: OutcomeCache | None = None, resume: bool = True, on_outcome: OnOutcome | None = None, seed: int = 0,
) -> list[SuiteResult]:
    """Every model on every suite, one model after the other (models on one box share its CPU)."""
    results = []
    for model in models:
        for suite in suites:
            results.append(await evaluate_suite(sender, model, suite, concurrency=concurrency, cache=cache,
                                                 resume=resume, on_outcome=on_outcome, seed=seed))
    return results


def problem_counts(suites: Sequence[Suite], models: Sequence[str]) -> Mapping[tuple[str, str], int]:
    """How many problems each (model, suite) has: the totals of the progress bars."""
    return {(model, suite.name): len(suite.problems()) for model in models for suite in suites}
