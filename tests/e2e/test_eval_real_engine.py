"""`inferlab eval` end to end: the real SmolLM2 engine behind the gateway, a few problems of each suite.

HumanEval answers and infilling answers (through the gateway's fill-in-the-middle path: a
completion with ``suffix``) are executed in the sandbox; multiple choice is scored from the log
probabilities llama-server returns. A second run is served from the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferlab.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.engine
MODEL = "smollm2-135m"


def _eval(gateway: GatewayProcess, tmp_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "inferlab", "eval", "--base-url", gateway.url + "/v1", "--models", MODEL,
            "--suites", "humaneval,infilling,mc", "--limit", "2", "--max-tokens", "40", "--infill-max-tokens", "16",
            "--cache-dir", str(tmp_path / "cache"), "--json", str(out), "--timeout", "120",
            "--deployment", "smollm2-135m@l4/Q4_1"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)


def test_eval_runs_every_suite_through_the_gateway_and_resumes(live_gateway: GatewayProcess, tmp_path: Path) -> None:
    first = _eval(live_gateway, tmp_path, tmp_path / "first.json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    run = json.loads((tmp_path / "first.json").read_text())
    suites = {result["suite"]: result for result in run["results"]}
    assert set(suites) == {"humaneval", "humaneval-infilling", "mc:builtin"}
    assert "isolated" in run["isolation"]
    for result in suites.values():
        assert result["errors"] == 0, result["outcomes"]
        assert result["cached"] == 0
        assert result["prompt_tokens"] > 0 and result["completion_tokens"] > 0 and result["tokens_per_s"] > 0
        assert 0.0 <= result["score"]["low"] <= result["score"]["value"] <= result["score"]["high"] <= 1.0
        assert result["cost_per_1k_problems_usd"] > 0
    assert suites["humaneval"]["problems"] == 2
    infilling = suites["humaneval-infilling"]
    assert {o["detail"]["mode"] for o in infilling["outcomes"]} == {"single", "multi"}
    for outcome in suites["humaneval"]["outcomes"] + infilling["outcomes"]:  # each answer was executed
        assert outcome["correct"] == 1 or outcome["detail"]["failures"]
    assert suites["mc:builtin"]["problems"] == 2
    assert suites["mc:builtin"]["scoring"].get("logprobs", 0) >= 1  # llama-server returns chat logprobs

    second = _eval(live_gateway, tmp_path, tmp_path / "second.json")
    assert second.returncode == 0, second.stdout + second.stderr
    again = {r["suite"]: r for r in json.loads((tmp_path / "second.json").read_text())["results"]}
    for name, result in again.items():
        assert result["cached"] == result["problems"]
        assert result["score"] == suites[name]["score"]
