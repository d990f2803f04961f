"""`inferlab deploy plan`: the planning toolkit's sizing becomes an engine spec with its reasons."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inferlab.cli import app
from inferlab.coordinator import cli as deploy_cli
from inferlab.coordinator.planner import PlanRequest, plan_engine
from inferlab.planning.catalogue import load_catalogue
from inferlab.planning.memory import estimate_memory


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    deploy_cli.register(app)
    return CliRunner()


def test_a_405b_model_over_two_nodes_is_tp_within_and_pp_across() -> None:
    catalogue = load_catalogue()
    plan = plan_engine(catalogue, PlanRequest("llama-3.1-405b", "h100-sxm", 16, "vllm", "bf16"))
    p = plan.spec.parallel
    assert (p.tensor, p.pipeline, p.nodes) == (8, 2, 2) and plan.fits
    # the KV budget and the sequences come from the planning toolkit's own memory model
    memory = estimate_memory(catalogue, _deployment(catalogue), 8192)
    assert plan.kv_cache_gib_per_rank == pytest.approx(memory.kv_pool / 2**30)
    assert plan.spec.max_sequences == int(memory.kv_pool // (memory.kv_bytes_per_token * 8192))
    assert any("across 2 nodes" in reason and "GB/s" in reason for reason in plan.reasons)


def _deployment(catalogue):  # type: ignore[no-untyped-def]
    from inferlab.planning.deployment import resolve_deployment

    return resolve_deployment(catalogue, model="llama-3.1-405b", gpu="h100-sxm", quant="bf16", engine="vllm", gpus=16,
                              tensor_parallel=8, pipeline_parallel=2)


def test_fp8_weights_on_a_bf16_model_ask_vllm_to_quantise() -> None:
    plan = plan_engine(load_catalogue(), PlanRequest("llama-3.1-70b", "h100-sxm", 2, "vllm", "fp8", kv_dtype="fp8"))
    argv = plan.group.leader.argv
    assert argv[argv.index("--quantization") + 1] == "fp8"
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"


def test_the_command_prints_the_spec_the_command_and_why(runner: CliRunner) -> None:
    result = runner.invoke(app, ["deploy", "plan", "llama-3.1-70b", "--gpu", "a100-80gb-sxm", "--gpus", "4", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["parallel"] == {"tensor": 4, "pipeline": 1, "nodes": 1, "rpc_workers": 0, "gpus_per_node": 4}
    assert document["commands"][0]["argv"][:3] == ["vllm", "serve", "meta-llama/Llama-3.1-70B"]
    assert document["kv_cache_gib_per_gpu"] > 30 and document["max_sequences"] > 1
    assert any(reason.startswith("memory per GPU") for reason in document["why"])


def test_a_model_that_does_not_fit_is_refused_with_the_reason(runner: CliRunner) -> None:
    result = runner.invoke(app, ["deploy", "plan", "llama-3.1-405b", "--gpu", "h100-sxm", "--gpus", "2"])
    assert result.exit_code == 1
    assert "does not fit" in result.output and "DOES NOT FIT" in result.output
