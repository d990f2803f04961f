"""``inferlab vram | estimate | cost | plan`` on a throwaway Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferlab.planning.cli import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


runner = CliRunner()


def test_commands_have_help(app: typer.Typer) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("vram", "estimate", "cost", "plan"):
        assert name in result.output


def test_vram_table_and_json(app: typer.Typer) -> None:
    table = runner.invoke(app, ["vram", "llama-3.1-8b", "--gpu", "rtx-4090", "--quant", "Q4_K_M", "-c", "8192"])
    assert table.exit_code == 0, table.output
    assert "kv cache" in table.output and "max context" in table.output
    data = json.loads(runner.invoke(app, ["vram", "llama-3.1-8b", "--gpu", "rtx-4090", "--quant", "Q4_K_M",
                                          "-c", "8192", "--json"]).output)
    assert data["fits"] is True
    assert data["kv_bytes_per_token"] == 131072
    assert data["per_device_gib"]["kv_cache"] == pytest.approx(1.0)


def test_estimate_cost_and_plan(app: typer.Typer) -> None:
    est = runner.invoke(app, ["estimate", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8", "--engine", "vllm",
                              "--concurrency", "8", "--json"])
    assert est.exit_code == 0, est.output
    assert json.loads(est.output)["estimate"]["batch"] == 8
    cost = runner.invoke(app, ["cost", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "2", "--quant", "fp8",
                               "--engine", "vllm"])
    assert cost.exit_code == 0, cost.output
    assert "per 1M output tokens" in cost.output and "break-even" in cost.output
    plan = runner.invoke(app, ["plan", "qwen2.5-coder-32b", "--gpu", "h100-sxm", "--quant", "fp8", "--users", "1000",
                               "--json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["plan"]["gpus"] >= 1


def test_cost_with_own_prices(app: typer.Typer) -> None:
    result = runner.invoke(app, ["cost", "qwen2.5-7b", "--gpu", "apple-m1", "--memory-gb", "16", "--quant", "Q4_K_M",
                                 "--purchase-usd", "899", "--power-w", "39", "--setting", "home", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["owned"]["capital"] == pytest.approx(899 / 36)
    assert data["rented"] is None


def test_model_from_gguf_file(app: typer.Typer, smollm2_gguf: Path) -> None:
    result = runner.invoke(app, ["vram", str(smollm2_gguf), "--gpu", "cpu-ddr4-3200", "-c", "2048", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["per_device_gib"]["weights"] == pytest.approx(92.10 / 1024, rel=1e-3)


def test_bad_input_is_a_clear_error(app: typer.Typer) -> None:
    result = runner.invoke(app, ["vram", "llama-3.1-8b", "--gpu", "rtx-9090"])
    assert result.exit_code == 2
    assert "unknown GPU/accelerator 'rtx-9090'" in result.output and "rtx-4090" in result.output
    result = runner.invoke(app, ["vram", "llama-3.1-8b", "--gpu", "rtx-4090", "-c", "-5"])
    assert result.exit_code == 2 and "context" in result.output
    result = runner.invoke(app, ["vram", "llama-3.1-8b", "--gpu", "rtx-4090", "--quant", "Q7_X"])
    assert result.exit_code == 2 and "Q4_K_M" in result.output


def test_plan_writes_the_report_its_charts_and_the_workbook(app: typer.Typer, tmp_path: Path) -> None:
    target = tmp_path / "out" / "economics.md"
    result = runner.invoke(app, ["plan", "--report", str(target)])
    assert result.exit_code == 0, result.output
    assert "## Validation" in target.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "economics.xlsx").stat().st_size > 10_000
    assert (tmp_path / "out" / "economics" / "tornado-buy.svg").read_text(encoding="utf-8").startswith("<svg")
    assert str(tmp_path / "out" / "economics.xlsx") in result.output


def test_cost_refuses_a_model_that_does_not_fit(app: typer.Typer) -> None:
    """70B fp16 (141 GB of weights) on one 80 GB GPU: no price, a reason, a non-zero exit."""
    args = ["cost", "llama-3.1-70b", "--gpu", "h100-sxm", "--quant", "fp16", "--engine", "vllm"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "refused" in refused.output and "does not fit" in refused.output and "per 1M" not in refused.output
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["fits"] is False and "131.4 GiB" in data["reason"]
    assert data["owned_usd_per_mtok"] is None and data["rented_usd_per_mtok"] is None and data["rented"] is None
    two = runner.invoke(app, [*args, "--gpus", "2", "--json"])
    assert two.exit_code == 0, two.output
    assert json.loads(two.stdout)["fits"] is True and json.loads(two.stdout)["rented_usd_per_mtok"] > 0


def test_cost_pays_the_hours_the_box_runs(app: typer.Typer) -> None:
    base = ["cost", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8", "--engine", "vllm", "--json",
            "--utilisation", "0.25"]
    always_on = json.loads(runner.invoke(app, base).stdout)
    assert always_on["rented_hours_per_month"] == 730
    assert always_on["rented"]["rent"] == pytest.approx(2.69 * 730)  # runpod secure, busy or not
    stopped = runner.invoke(app, [*base, "--hours-per-day", "6.5", "--billing-increment-s", "3600"])
    assert json.loads(stopped.stdout)["rented_hours_per_month"] == pytest.approx(730 / 24 * 7)
    too_busy = runner.invoke(app, [*base, "--hours-per-day", "2"])
    assert too_busy.exit_code == 2 and "utilisation" in too_busy.output


def test_estimate_takes_tp_and_context_and_shows_the_bandwidth_bound(app: typer.Typer) -> None:
    args = ["estimate", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "2", "--quant", "fp16", "--engine", "vllm",
            "--tp", "2", "--context", "16384"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "raw bandwidth bound" in table.output and "3,350 GB/s" in table.output
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert data["fits"] is True and data["memory"]["context"] == 16384
    est = data["estimate"]
    assert est["bandwidth_bound_tokens_per_s_per_stream"] > est["tokens_per_s_per_stream"]
    too_long = runner.invoke(app, [*args, "--context", "400000"])
    assert too_long.exit_code == 0 and "warning" in too_long.output and "shorten the context" in too_long.output
    pipeline = json.loads(runner.invoke(app, [*args[:-4], "--tp", "1", "--pp", "2", "--json"]).stdout)
    assert "2x h100-sxm" in pipeline["estimate"]["deployment"]


def test_estimate_with_expert_parallelism_and_speculative_decoding(app: typer.Typer) -> None:
    base = ["estimate", "qwen3-coder-480b-a35b", "--gpu", "h100-sxm", "--gpus", "8", "--quant", "fp8", "--engine", "vllm",
            "--json"]
    plain = json.loads(runner.invoke(app, base).output)["estimate"]
    ep = json.loads(runner.invoke(app, [*base, "--expert-parallel"]).output)["estimate"]
    fast = json.loads(runner.invoke(app, [*base, "--spec-draft-tokens", "3", "--spec-acceptance", "2.9"]).output)["estimate"]
    assert "EP" in ep["deployment"] and ep["itl_s"] != plain["itl_s"]
    assert plain["step_fixed_s"] > 0 and fast["tokens_per_step"] == 2.9
    assert fast["tokens_per_s_per_stream"] > plain["tokens_per_s_per_stream"]
    table = runner.invoke(app, base[:-1])
    assert "fixed latency per step" in table.output
    bad = runner.invoke(app, [*base, "--spec-draft-tokens", "3"])
    assert bad.exit_code == 2 and "acceptance_length" in bad.output
    too_many = runner.invoke(app, [*base, "--spec-draft-tokens", "3", "--spec-acceptance", "9"])
    assert too_many.exit_code == 2 and "acceptance_length" in too_many.output
