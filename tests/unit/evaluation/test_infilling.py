"""The infilling generator: the masked text put back is the canonical solution, which passes every
problem's tests in the sandbox; garbage in the hole fails; tasks are seeded."""

from __future__ import annotations

import asyncio
import sys

import pytest

from inferlab.evaluation.humaneval import humaneval_problems, humaneval_program
from inferlab.evaluation.infilling import MAX_SPAN, clean_middle, infill_program, infilling_problems
from inferlab.evaluation.sandbox import Sandbox
from inferlab.evaluation.suite import Problem
from inferlab.testing.needs import require

PROBLEMS = humaneval_problems()
TASKS = infilling_problems(PROBLEMS)


def test_every_problem_gets_a_single_line_task_and_most_a_multi_line_one() -> None:
    assert len(PROBLEMS) == 164
    single = [t for t in TASKS if t.data["mode"] == "single"]
    multi = [t for t in TASKS if t.data["mode"] == "multi"]
    assert len(single) == 164
    assert 100 < len(multi) < 164  # one-line solutions have no multi-line span
    for task in multi:
        start, end = task.data["lines"]
        assert 2 <= end - start <= MAX_SPAN
        assert sum(1 for line in task.data["middle"].splitlines() if line.strip()) >= 2
    for task in single:
        assert task.data["middle"].count("\n") == 1 and task.data["middle"].strip()


def test_filling_the_hole_with_the_masked_text_gives_back_the_canonical_program() -> None:
    by_id = {problem.id: problem for problem in PROBLEMS}
    for task in TASKS:
        original = by_id[task.id.rsplit("/", 1)[0]]
        assert infill_program(task, task.data["middle"]) == humaneval_program(original, original.data["canonical_solution"])


def test_tasks_are_seeded() -> None:
    again = infilling_problems(PROBLEMS)
    assert [t.data["lines"] for t in again] == [t.data["lines"] for t in TASKS]
    other = infilling_problems(PROBLEMS, seed=1)
    assert [t.data["lines"] for t in other] != [t.data["lines"] for t in TASKS]
    assert all(t.data["mode"] == "single" for t in infilling_problems(PROBLEMS, ["single"]))


def test_a_multi_line_answer_is_cut_where_it_repeats_the_suffix() -> None:
    task = next(t for t in TASKS if t.data["mode"] == "multi" and t.data["suffix"].strip())
    following = next(line for line in task.data["suffix"].splitlines() if line.strip())
    answer = task.data["middle"] + following + "\n    junk\n"
    assert clean_middle(task, answer) == task.data["middle"]
    single = Problem("x/single", {**task.data, "mode": "single"})
    assert clean_middle(single, "    x = 1\n    y = 2\n") == "    x = 1"


def _sandbox_ready() -> None:
    require(sys.platform.startswith("linux"), "the sandbox tests run on Linux")


async def _run_all(programs: list[str]) -> list[bool]:
    sandbox = Sandbox(concurrency=2)
    await sandbox.start()
    results = await asyncio.gather(*(sandbox.run(program) for program in programs))
    return [result.passed for result in results]


def test_the_canonical_solution_of_every_problem_passes_in_the_sandbox() -> None:
    """Every infilling task filled with its own text is one of these 164 programs (test above)."""
    _sandbox_ready()
    passed = asyncio.run(_run_all([humaneval_program(p, p.data["canonical_solution"]) for p in PROBLEMS]))
    failing = [problem.id for problem, ok in zip(PROBLEMS, passed, strict=True) if not ok]
    assert not failing


@pytest.mark.parametrize("garbage", ["@@ not python @@", "    return None"])
def test_garbage_in_the_hole_fails(garbage: str) -> None:
    _sandbox_ready()
    sample = TASKS[:: max(1, len(TASKS) // 12)]
    passed = asyncio.run(_run_all([infill_program(task, garbage) for task in sample]))
    if garbage.startswith("@@"):
        assert not any(passed)
    else:  # a plausible but wrong line: most tasks fail (a line may be dead code, so not all)
        assert sum(passed) <= len(sample) // 4
