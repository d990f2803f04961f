"""The runner against a real HTTP server (the engine simulator): requests, tokens, cache and resume,
failed requests retried on resume, results saved and read back, the CLI's table and errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferlab.evaluation.cache import OutcomeCache
from inferlab.evaluation.cli import register
from inferlab.evaluation.client import ModelClient
from inferlab.evaluation.humaneval import HumanEval, humaneval_problems
from inferlab.evaluation.multiple_choice import MultipleChoice, builtin_questions
from inferlab.evaluation.results import EvalRun
from inferlab.evaluation.runner import evaluate, evaluate_suite
from inferlab.evaluation.sandbox import Sandbox
from inferlab.testing.simulator import EngineSimulator

QUESTIONS = builtin_questions()[:6]


async def test_finished_problems_are_cached_and_not_asked_again(sim: EngineSimulator, tmp_path: Path) -> None:
    cache = OutcomeCache(tmp_path)
    suite = MultipleChoice(QUESTIONS)
    seen: list[tuple[str, bool]] = []
    async with ModelClient(f"{sim.base_url}/v1") as client:
        first = await evaluate_suite(client, "sim-model", suite, concurrency=3, cache=cache,
                                     on_outcome=lambda m, s, o, cached: seen.append((o.problem_id, cached)))
        assert sim.requests_total == 6
        again = await evaluate_suite(client, "sim-model", suite, cache=cache)
        assert sim.requests_total == 6  # nothing asked twice
        fresh = await evaluate_suite(client, "sim-model", suite, cache=cache, resume=False)
        assert sim.requests_total == 12
    assert [o.problem_id for o in first.outcomes] == [q.id for q in QUESTIONS]  # problem order, whatever finished first
    assert first.cached == 0 and again.cached == 6 and fresh.cached == 0
    assert again.score == first.score and again.completion_tokens == first.completion_tokens > 0
    assert first.prompt_tokens > 0 and first.model_seconds > 0 and first.tokens_per_s > 0
    assert first.scoring == {"generation": 6}  # the simulator returns no logprobs
    assert sorted(seen) == sorted((q.id, False) for q in QUESTIONS)


async def test_failed_requests_count_as_errors_and_are_asked_again_on_resume(sim: EngineSimulator, tmp_path: Path) -> None:
    cache = OutcomeCache(tmp_path)
    suite = MultipleChoice(QUESTIONS)
    sim.script.fail_status, sim.script.fail_next = 500, 2
    async with ModelClient(f"{sim.base_url}/v1") as client:
        broken = await evaluate_suite(client, "sim-model", suite, cache=cache)
        assert broken.errors == 2 and broken.problems == 6
        resumed = await evaluate_suite(client, "sim-model", suite, cache=cache)
    assert sim.requests_total == 8  # 6, then only the 2 that failed
    assert resumed.errors == 0 and resumed.cached == 4
    errors = [o.detail["error"] for o in broken.outcomes if o.errors]
    assert all(error.startswith("HTTP 500") for error in errors)


async def test_several_models_and_a_saved_run(sim: EngineSimulator, tmp_path: Path) -> None:
    suite = MultipleChoice(QUESTIONS[:2])
    async with ModelClient(f"{sim.base_url}/v1") as client:
        results = await evaluate(client, ["sim-model", "sim-model-b"], [suite])
    assert [(r.model, r.suite) for r in results] == [("sim-model", "multiple-choice"), ("sim-model-b", "multiple-choice")]
    run = EvalRun("http://x/v1", "2026-01-01T00:00:00+00:00", {"seed": 0}, "none", tuple(results))
    run.save(tmp_path / "run.json")
    loaded = EvalRun.load(tmp_path / "run.json")
    assert loaded.to_dict() == run.to_dict()
    matrix = loaded.problem_matrix("multiple-choice")
    assert set(matrix) == {q.id for q in QUESTIONS[:2]}
    assert set(matrix[QUESTIONS[0].id]["scores"]) == {"sim-model", "sim-model-b"}
    assert matrix[QUESTIONS[0].id]["prompt_tokens"] > 0  # what a router would threshold on


def _invoke(*args: str) -> tuple[int, str]:
    cli = typer.Typer()
    register(cli)  # the only command: invoked without its name
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


async def test_the_command_prints_the_table_and_writes_json(sim: EngineSimulator, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    code, output = await asyncio.to_thread(
        _invoke, "--base-url", f"{sim.base_url}/v1", "--models", "sim-model", "--suites", "mc", "--limit", "3",
        "--cache-dir", str(tmp_path / "cache"), "--json", str(out),
        "--deployment", "smollm2-135m@l4/Q4_1",
    )
    assert code == 0, output
    assert "sim-model" in output and "mc:builtin" in output and "$" in output
    saved = json.loads(out.read_text())
    assert saved["format"] == "inferlab-eval/1"
    result = saved["results"][0]
    assert result["problems"] == 3 and result["cost_per_1k_problems_usd"] > 0
    assert "l4" in result["cost_note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suites", "nope"], "unknown suite 'nope'"),
        (["--suites", "mc", "--mc-file", "/no/such/file.jsonl"], "cannot read"),
        (["--suites", "mc", "--deployment", "smollm2-135m"], "is not CATALOGUE_MODEL@ACCELERATOR"),
        (["--suites", "mc", "--deployment", "other=smollm2-135m@l4"], "not in --models"),
        (["--suites", "humaneval", "--samples", "1", "--k", "5"], "between 1 and --samples"),
        (["--prompting", "shouting"], "must be one of completion, chat"),
        (["--suites", "mc", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_input_is_a_message_and_a_non_zero_exit(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = _invoke("--base-url", "http://127.0.0.1:9/v1", "--models", "m", "--no-cache", *args)
    assert code == 2
    assert message in " ".join(output.split())
    assert "Traceback" not in output


def test_an_unreachable_server_fails_the_run_with_the_reason(tmp_path: Path) -> None:
    code, output = _invoke("--base-url", "http://127.0.0.1:9/v1", "--models", "m", "--suites", "mc", "--limit", "2",
                           "--no-cache", "--timeout", "5")
    assert code == 1
    assert "every request failed" in output and "Traceback" not in output


def test_help_lists_the_options() -> None:
    code, output = _invoke("--help")
    assert code == 0
    for option in ("--models", "--suites", "--samples", "--sandbox", "--deployment", "--resume"):
        assert option in output


async def test_concurrency_bounds_requests_not_problems(sim: EngineSimulator) -> None:
    """Three samples a problem, two requests at a time: a server with two slots never queues."""
    sim.script.token_delay_s = 0.01
    sandbox = Sandbox(concurrency=2)
    await sandbox.start()
    suite = HumanEval(humaneval_problems()[:3], sandbox, samples=3, ks=[1, 3], temperature=0.8)
    async with ModelClient(f"{sim.base_url}/v1") as client:
        result = await evaluate_suite(client, "sim-model", suite, concurrency=2)
    assert sim.requests_total == 9
    assert sim.max_in_flight_seen == 2
    assert result.requests == 9 and result.errors == 0
    assert set(result.pass_at) == {1, 3}
