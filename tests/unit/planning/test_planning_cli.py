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


def test_plan_writes_the_report(app: typer.Typer, tmp_path: Path) -> None:
    target = tmp_path / "economics.md"
    result = runner.invoke(app, ["plan", "--report", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("# Economics of self-hosted inference")
