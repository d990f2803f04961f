"""Multiple-choice questions (question, choices, answer) from JSONL, scored by log-likelihood or by generation.

The file format, one JSON object a line::

    {"id": "q1", "question": "...", "choices": ["...", "..."], "answer": 1}

``answer`` is the 0-based index of the right choice or its letter (``"B"``); ``id`` is optional
(default: the line number); 2 to 26 choices. :func:`builtin_questions` is a small set written for
this project (general knowledge, arithmetic, programming), any file in the same format works.

Each question is shown with lettered choices and ends with ``Answer:``. The model is asked for a
few tokens at temperature 0, with log probabilities of the first one when the scoring allows:

* ``logprobs`` scoring — the choice whose letter has the highest log probability as the first
  answer token (the MMLU way), when the server returned log probabilities that include a letter;
* ``generation`` scoring — otherwise, the first letter of a choice in the generated text.

Each outcome says which scoring decided it (``detail.scoring``); the report counts them.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.suite import ModelReply, ModelRequest, Outcome, Problem

__all__ = ["MultipleChoice", "Scoring", "builtin_questions", "load_questions", "parse_questions"]

Scoring = Literal["auto", "generation"]
LETTERS = string.ascii_uppercase
BUILTIN = "multiple_choice.jsonl"
INSTRUCTION = "The following is a multiple choice question. Answer with the letter of the correct choice."
_ANSWER_WORD = re.compile(r"answer(?: is)?\s*:?\s*\(?([A-Z])\b", re.IGNORECASE)
_LEADING_LETTER = re.compile(r"^\W*([A-Z])(?:$|[\s.):,])")


def _answer_index(raw: Any, choices: int, where: str) -> int:
    if isinstance(raw, bool):
        raise EvaluationError(f"{where}: 'answer' must be a choice index or letter")
    if isinstance(raw, int) and 0 <= raw < choices:
        return raw
    if isinstance(raw, str) and len(raw.strip()) == 1 and raw.strip().upper() in LETTERS[:choices]:
        return LETTERS.index(raw.strip().upper())
    raise EvaluationError(f"{where}: 'answer' must be an index 0..{choices - 1} or a letter A..{LETTERS[choices - 1]}")


def parse_questions(lines: Sequence[str], source: str) -> list[Problem]:
    """Questions from JSONL text lines; any malformed line is an :class:`EvaluationError` naming it."""
    questions: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise EvaluationError(f"{where}: expected an object with question, choices and answer")
        question, choices = record.get("question"), record.get("choices")
        if not isinstance(question, str) or not question.strip():
            raise EvaluationError(f"{where}: 'question' must be a non-empty string")
        if (not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS)
                or not all(isinstance(choice, str) and choice.strip() for choice in choices)):
            raise EvaluationError(f"{where}: 'choices' must be a list of 2 to 26 non-empty strings")
        answer = _answer_index(record.get("answer"), len(choices), where)
        identifier = str(record.get("id", number))
        if identifier in seen:
            raise EvaluationError(f"{where}: id {identifier!r} is used twice")
        seen.add(identifier)
        questions.append(Problem(identifier, {"question": question, "choices": choices, "answer": answer}))
    if not questions:
        raise EvaluationError(f"{source}: no questions")
    return questions


def load_questions(path: Path) -> list[Problem]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror}") from None
    return parse_questions(text.splitlines(), str(path))


def builtin_questions() -> list[Problem]:
    """The built-in question set (``inferlab/evaluation/data/multiple_choice.jsonl``)."""
    text = resources.files("inferlab.evaluation").joinpath("data", BUILTIN).read_text(encoding="utf-8")
    return parse_questions(text.splitlines(), BUILTIN)


def question_text(problem: Problem) -> str:
    choices = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(problem.data["choices"]))
    return f"Question: {problem.data['question']}\n{choices}\nAnswer:"


def letter_from_logprobs(logprobs: Mapping[str, float], choices: int) -> str | None:
    """The valid letter with the highest log probability among the first-token candidates, if any."""
    best: dict[str, float] = {}
    for token, value in logprobs.items():
        letter = token.strip().strip("().:*")
        if len(letter) == 1 and letter in LETTERS[:choices]:
            best[letter] = max(value, best.get(letter, float("-inf")))
    return max(best, key=lambda letter: best[letter]) if best else None


def letter_from_text(text: str, choices: Sequence[str]) -> str | None:
    """The answer a generated text gives: a leading letter, 'answer is X', or the one choice it quotes."""
    valid = LETTERS[: len(choices)]
    for pattern in (_LEADING_LETTER, _ANSWER_WORD):
        match = pattern.search(text.strip())
        if match and match.group(1).upper() in valid:
            return match.group(1).upper()
    quoted = [i for i, choice in enumerate(choices) if choice.strip().lower() in text.lower()]
    return LETTERS[quoted[0]] if len(quoted) == 1 else None


class MultipleChoice:
    """A multiple-choice suite over parsed questions; ``prompting`` picks the route."""

    def __init__(self, questions: Sequence[Problem], *, name: str = "multiple-choice",
                 prompting: Literal["completion", "chat"] = "chat", scoring: Scoring = "auto",
                 max_tokens: int = 8, seed: int = 0) -> None:
        self._questions = list(questions)
        self._name = name
        self.prompting = prompting
        self.scoring = scoring
        self.max_tokens = max_tokens
        self.seed = seed

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        digest = [(q.id, q.data["question"], q.data["choices"], q.data["answer"]) for q in self._questions]
        return {"suite": self._name, "prompting": self.prompting, "scoring": self.scoring,
                "max_tokens": self.max_tokens, "seed": self.seed, "questions": digest, "version": 1}

    def problems(self) -> Sequence[Problem]:
        return self._questions

    def requests(self, problem: Problem) -> Sequence[ModelRequest]:
        body: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": 0.0, "seed": self.seed}
        if self.prompting == "chat":
            body["messages"] = [{"role": "system", "content": INSTRUCTION},
                                {"role": "user", "content": question_text(problem)}]
            if self.scoring == "auto":
                body |= {"logprobs": True, "top_logprobs": 20}
            return [ModelRequest("chat", body)]
        body["prompt"] = f"{INSTRUCTION}\n\n{question_text(problem)}"
        if self.scoring == "auto":
            body["logprobs"] = 5
        return [ModelRequest("completions", body)]

    async def score(self, problem: Problem, replies: Sequence[ModelReply]) -> Outcome:
        reply = replies[0]
        choices = problem.data["choices"]
        expected = LETTERS[problem.data["answer"]]
        chosen, scoring = None, "generation"
        if reply.error is None and reply.first_token_logprobs:
            chosen = letter_from_logprobs(reply.first_token_logprobs, len(choices))
            scoring = "logprobs" if chosen else "generation"
        if reply.error is None and chosen is None:
            chosen = letter_from_text(reply.text, choices)
        correct = int(chosen == expected)
        detail: dict[str, Any] = {"scoring": scoring, "chosen": chosen, "expected": expected, "answer": reply.text[:200]}
        if reply.error is not None:
            detail = {"scoring": "none", "error": reply.error[:200]}
        return Outcome(problem_id=problem.id, score=float(correct), samples=1, correct=correct,
                       prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                       model_seconds=reply.seconds, pass_at={}, detail=detail,
                       errors=int(reply.error is not None))
