"""HumanEval infilling: fill a masked part of a canonical solution, scored by running the tests.

Derived here from the HumanEval problems (in the spirit of Bavarian et al., 2022, "Efficient
Training of Language Models to Fill in the Middle", whose benchmark is not on PyPI): for each
problem, one **single-line** task masks one non-blank line of the canonical solution, and one
**multi-line** task masks a span of 2 to 6 consecutive lines holding at least two non-blank ones
(problems whose solution is one line get the single-line task only). Which line or span is chosen
is drawn from a generator seeded by ``seed`` and the task id, so the same seed gives the same tasks.

The prefix is the prompt plus the solution above the hole, the suffix the solution below it. The
model gets both as a completion with ``suffix`` (``/v1/completions``), which InferLab renders with
the model's fill-in-the-middle template — so this suite measures the gateway's FIM path end to end.
A single-line answer is cut at its first newline; a multi-line answer is cut where it starts
repeating the suffix. The program run is prefix + answer + suffix + tests: filled with the masked
text itself it is exactly the canonical solution, which passes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from inferlab.evaluation.code_scoring import reported_ks, score_samples
from inferlab.evaluation.sandbox import Sandbox
from inferlab.evaluation.suite import ModelReply, ModelRequest, Outcome, Problem

__all__ = ["InfillMode", "Infilling", "infill_program", "infilling_problems"]

InfillMode = Literal["single", "multi"]
MAX_SPAN = 6


def _mask(problem: Problem, start: int, end: int, mode: InfillMode) -> Problem:
    lines = problem.data["canonical_solution"].splitlines(keepends=True)
    data = {
        "prefix": problem.data["prompt"] + "".join(lines[:start]),
        "middle": "".join(lines[start:end]),
        "suffix": "".join(lines[end:]),
        "test": problem.data["test"],
        "entry_point": problem.data["entry_point"],
        "mode": mode,
        "lines": [start, end],
    }
    return Problem(f"{problem.id}/{mode}", data)


def _span(lines: list[str], rng: random.Random) -> tuple[int, int] | None:
    """A span of 2..MAX_SPAN lines that starts and ends on code and holds two code lines, or None."""
    code = [index for index, line in enumerate(lines) if line.strip()]
    if len(code) < 2:
        return None
    spans = [(code[i], code[j] + 1) for i in range(len(code)) for j in range(i + 1, len(code))
             if code[j] + 1 - code[i] <= MAX_SPAN]
    return rng.choice(spans) if spans else None


def infilling_problems(problems: Sequence[Problem], modes: Sequence[InfillMode] = ("single", "multi"),
                       *, seed: int = 0) -> list[Problem]:
    """The infilling tasks derived from HumanEval ``problems`` (see the module docstring)."""
    tasks = []
    for problem in problems:
        lines = problem.data["canonical_solution"].splitlines(keepends=True)
        code = [index for index, line in enumerate(lines) if line.strip()]
        if not code:
            continue
        if "single" in modes:
            line = random.Random(f"{seed}:{problem.id}:single").choice(code)
            tasks.append(_mask(problem, line, line + 1, "single"))
        if "multi" in modes:
            span = _span(lines, random.Random(f"{seed}:{problem.id}:multi"))
            if span is not None:
                tasks.append(_mask(problem, *span, "multi"))
    return tasks


def infill_program(task: Problem, middle: str) -> str:
    """The file the sandbox runs: the solution with ``middle`` in its hole, the tests, the call to ``check``."""
    data = task.data
    if middle and not middle.endswith("\n"):
        middle += "\n"
    return f"{data['prefix']}{middle}{data['suffix']}\n\n{data['test']}\n\ncheck({data['entry_point']})\n"


def clean_middle(task: Problem, text: str) -> str:
    """What of the model's answer goes into the hole: one line, or the lines before the suffix repeats."""
    if task.data["mode"] == "single":
        return text.split("\n", 1)[0]
    following = next((line for line in task.data["suffix"].splitlines() if line.strip()), None)
    if following is not None:
        position = text.find(following.rstrip())
        if position > 0 and text[:position].endswith("\n"):
            return text[:position]
    return text


class Infilling:
    """The infilling suite over tasks made by :func:`infilling_problems`."""

    def __init__(self, tasks: Sequence[Problem], sandbox: Sandbox, *, samples: int = 1, ks: Sequence[int] = (1,),
                 temperature: float = 0.0, max_tokens: int = 128, seed: int = 0) -> None:
        self.ks = reported_ks(samples, ks)
        self._tasks = list(tasks)
        self._sandbox = sandbox
        self.samples = samples
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed

    @property
    def name(self) -> str:
        return "humaneval-infilling"

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        return {"suite": self.name, "samples": self.samples, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "seed": self.seed, "version": 1}

    def problems(self) -> Sequence[Problem]:
        return self._tasks

    def requests(self, problem: Problem) -> Sequence[ModelRequest]:
        body: dict[str, Any] = {"prompt": problem.data["prefix"], "suffix": problem.data["suffix"],
                                "max_tokens": self.max_tokens, "temperature": self.temperature}
        if problem.data["mode"] == "single":
            body["stop"] = ["\n"]
        return [ModelRequest("completions", {**body, "seed": self.seed + i}) for i in range(self.samples)]

    async def score(self, problem: Problem, replies: Sequence[ModelReply]) -> Outcome:
        return await score_samples(problem, replies, self._sandbox, self.ks,
                                   answer_of=lambda reply: clean_middle(problem, reply.text),
                                   program_of=lambda middle: infill_program(problem, middle),
                                   extra={"mode": problem.data["mode"]})
