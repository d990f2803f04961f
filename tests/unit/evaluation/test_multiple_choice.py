"""The multiple-choice format: parsing and its errors, the built-in set, both scorings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.multiple_choice import (
    MultipleChoice,
    builtin_questions,
    letter_from_logprobs,
    letter_from_text,
    load_questions,
    parse_questions,
)
from inferlab.evaluation.suite import ModelReply


def _line(**fields: object) -> str:
    return json.dumps({"question": "2 + 2?", "choices": ["3", "4"], "answer": 1} | fields)


def test_the_builtin_set_is_well_formed_and_balanced() -> None:
    questions = builtin_questions()
    assert len(questions) == 40
    answers = [q.data["answer"] for q in questions]
    assert {answers.count(i) for i in range(4)} == {10}  # no letter is a free win
    assert len({q.id for q in questions}) == 40


def test_user_files_in_the_same_format_load(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(_line(id="a") + "\n\n" + _line(answer="A", choices=["x", "y", "z"]) + "\n")
    questions = load_questions(path)
    assert [q.id for q in questions] == ["a", "3"]
    assert [q.data["answer"] for q in questions] == [1, 0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected an object"),
        (_line(question=""), "'question'"),
        (_line(choices=["only one"]), "'choices'"),
        (_line(choices=["a", 3]), "'choices'"),
        (_line(answer=2), "'answer'"),
        (_line(answer="C"), "'answer'"),
        (_line(answer=True), "'answer'"),
    ],
)
def test_a_malformed_line_is_named(line: str, message: str) -> None:
    with pytest.raises(EvaluationError, match=message) as caught:
        parse_questions([_line(), line], "mine.jsonl")
    assert "mine.jsonl:2" in str(caught.value)


def test_duplicate_ids_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="used twice"):
        parse_questions([_line(id="x"), _line(id="x")], "f")
    with pytest.raises(EvaluationError, match="no questions"):
        parse_questions(["", "  "], "f")
    with pytest.raises(EvaluationError, match="cannot read"):
        load_questions(tmp_path / "absent.jsonl")


def test_letters_from_logprobs_take_the_best_valid_letter() -> None:
    assert letter_from_logprobs({" B": -0.5, " A": -1.0, "The": -0.1}, 4) == "B"
    assert letter_from_logprobs({"A": -3.0, " A": -0.2, " C": -1.0}, 4) == "A"
    assert letter_from_logprobs({" E": -0.1, " a": -0.2}, 4) is None  # E is not a choice; "a" is a word
    assert letter_from_logprobs({"(C)": -0.3, " D.": -0.9}, 4) == "C"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(" B", "B"), ("C. Paris", "C"), ("(D)", "D"), ("The answer is A.", "A"), ("Paris", "C"),
     ("I am not sure", None), ("E", None)],
)
def test_letters_from_text(text: str, expected: str | None) -> None:
    assert letter_from_text(text, ["Berlin", "Madrid", "Paris", "Rome"]) == expected


def test_scoring_says_which_method_decided() -> None:
    question = builtin_questions()[0]  # gold: answer B (Au)
    suite = MultipleChoice([question], prompting="completion")
    body = suite.requests(question)[0].body
    assert body["logprobs"] == 5 and "Answer:" in body["prompt"] and "B. Au" in body["prompt"]
    by_logprobs = asyncio.run(suite.score(question, [ModelReply(text=" A", first_token_logprobs={" B": -0.1, " A": -2})]))
    assert by_logprobs.score == 1.0 and by_logprobs.detail["scoring"] == "logprobs"
    by_text = asyncio.run(suite.score(question, [ModelReply(text=" B. Au")]))
    assert by_text.score == 1.0 and by_text.detail["scoring"] == "generation"
    wrong = asyncio.run(suite.score(question, [ModelReply(text="Ag")]))
    assert wrong.score == 0.0
    failed = asyncio.run(suite.score(question, [ModelReply(error="HTTP 500: boom")]))
    assert failed.errors == 1 and failed.score == 0.0
    chat = MultipleChoice([question], prompting="chat", scoring="generation").requests(question)[0]
    assert chat.route == "chat" and "logprobs" not in chat.body
    assert MultipleChoice([question]).requests(question)[0].body["top_logprobs"] == 20
