"""``inferlab bench`` against the engine simulator, in process."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from inferlab.benchmark import BenchmarkConfig, BenchmarkConfigError, run_benchmark
from inferlab.benchmark.cli import register
from inferlab.benchmark.metrics import percentile
from inferlab.benchmark.report import write_json
from inferlab.benchmark.workload import build_requests
from inferlab.testing import EngineSimulator, SimulatorScript

TOKENS, TOKEN_DELAY_S, PREFILL_DELAY_S = 16, 0.005, 0.02


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=TOKENS, token_delay_s=TOKEN_DELAY_S, prefill_delay_s=PREFILL_DELAY_S)


def _config(sim: EngineSimulator, **overrides: object) -> BenchmarkConfig:
    options: dict[str, object] = {
        "base_url": f"{sim.base_url}/v1", "model": "sim-model", "num_prompts": 20, "concurrency": 4,
        "prompt_words": 10,
    }
    options.update(overrides)
    return BenchmarkConfig(**options)  # type: ignore[arg-type]


async def test_streaming_run_measures_the_simulator(sim: EngineSimulator, tmp_path: Path) -> None:
    result = await run_benchmark(_config(sim, save_detailed=True, label="sim"))
    assert (result.completed, result.failed) == (20, 0)
    assert result.total_output_tokens == 20 * TOKENS
    assert result.total_input_tokens == 20 * 10
    lat = result.latency_ms
    assert lat["p50_ttft_ms"] >= PREFILL_DELAY_S * 1000 * 0.95
    assert lat["mean_itl_ms"] == pytest.approx(TOKEN_DELAY_S * 1000, rel=0.3)
    assert lat["mean_tpot_ms"] == pytest.approx(TOKEN_DELAY_S * 1000, rel=0.3)
    for metric in ("ttft", "tpot", "itl", "e2el"):
        assert lat[f"p50_{metric}_ms"] <= lat[f"p90_{metric}_ms"] <= lat[f"p99_{metric}_ms"]
    assert lat["mean_e2el_ms"] > lat["mean_ttft_ms"]
    assert sim.max_in_flight_seen <= 4
    path = tmp_path / "out" / "result.json"
    write_json(result, path)
    data = orjson.loads(path.read_bytes())
    for name in ("duration", "completed", "failed", "total_input_tokens", "total_output_tokens",
                 "request_throughput", "output_throughput", "total_token_throughput",
                 "max_concurrency", "request_rate", "mean_ttft_ms", "median_tpot_ms", "std_itl_ms",
                 "p99_e2el_ms", "errors"):
        assert name in data, name
    assert data["request_rate"] == "inf" and data["max_concurrency"] == 4 and data["label"] == "sim"
    assert len(data["ttfts"]) == 20 and len(data["itls"][0]) == TOKENS - 1


async def test_non_stream_ttft_equals_e2el(sim: EngineSimulator) -> None:
    result = await run_benchmark(_config(sim, stream=False, endpoint="completions", num_prompts=8))
    assert result.completed == 8
    assert result.total_output_tokens == 8 * TOKENS
    assert result.latency_ms["mean_ttft_ms"] == result.latency_ms["mean_e2el_ms"]
    assert result.latency_ms["mean_itl_ms"] == 0.0
    assert "ttfts" not in result.to_dict()


async def test_max_tokens_and_request_rate(sim: EngineSimulator) -> None:
    sim.script.update({"token_delay_s": 0.0, "prefill_delay_s": 0.0})
    config = _config(sim, max_tokens=4, concurrency=None, request_rate=200.0, num_prompts=10, warmup=2)
    result = await run_benchmark(config)
    assert result.completed == 10 and result.total_output_tokens == 40
    assert sim.requests_total == 12
    assert result.metric("request_rate") == 200.0 and result.metric("max_concurrency") is None


async def test_failures_are_counted(sim: EngineSimulator) -> None:
    sim.script.update({"fail_status": 500, "fail_next": 5, "token_delay_s": 0.0})
    result = await run_benchmark(_config(sim, num_prompts=12))
    assert (result.completed, result.failed) == (7, 5)
    assert result.errors == {"HTTP 500": 5}
    assert result.total_output_tokens == 7 * TOKENS


async def test_cut_streams_and_timeouts_are_failures(sim: EngineSimulator) -> None:
    sim.script.update({"cut_after_tokens": 2, "token_delay_s": 0.0})
    cut = await run_benchmark(_config(sim, num_prompts=3))
    assert cut.failed == 3 and cut.completed == 0
    assert list(cut.errors) == ["ClientPayloadError"]
    sim.script.update({"cut_after_tokens": None, "hang": True})
    hung = await run_benchmark(_config(sim, num_prompts=2, timeout=0.2))
    assert hung.errors == {"timeout": 2}
    assert hung.latency_ms["mean_ttft_ms"] == 0.0


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([], 99) == 0.0


def test_config_rejects_bad_options() -> None:
    with pytest.raises(BenchmarkConfigError, match="concurrency"):
        BenchmarkConfig(base_url="http://x/v1", model="m", concurrency=0)
    with pytest.raises(BenchmarkConfigError, match="base URL"):
        BenchmarkConfig(base_url="x/v1", model="m")
    assert math.isinf(BenchmarkConfig(base_url="http://x/v1", model="m").request_rate)
    with pytest.raises(BenchmarkConfigError, match="temperature"):
        BenchmarkConfig(base_url="http://x/v1", model="m", temperature=2.5)


def test_temperature_is_sent_only_when_set() -> None:
    plain = BenchmarkConfig(base_url="http://x/v1", model="m")
    assert "temperature" not in orjson.loads(build_requests(plain, 1)[0].body)
    cold = BenchmarkConfig(base_url="http://x/v1", model="m", temperature=0.0)
    assert [orjson.loads(r.body)["temperature"] for r in build_requests(cold, 2)] == [0.0, 0.0]


async def test_prompt_file(sim: EngineSimulator, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '"one two three"\n{"prompt": "four five"}\n{"messages": [{"role": "user", "content": "six"}]}\n'
    )
    result = await run_benchmark(_config(sim, prompt_file=prompts, num_prompts=6, stream=False))
    assert result.completed == 6 and result.total_input_tokens == 2 * (3 + 2 + 1)


async def test_cli_bench_command(sim: EngineSimulator, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.command()
    def version() -> None:
        """A second command, so that Typer keeps 'bench' as a subcommand."""

    out = tmp_path / "bench.json"
    args = ["bench", "--base-url", f"{sim.base_url}/v1", "--model", "sim-model", "--num-prompts", "6",
            "--concurrency", "2", "--max-tokens", "8", "--percentiles", "50,99.9", "--json", str(out),
            "--label", "cli", "--quiet"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "Successful requests" in result.output
    data = orjson.loads(out.read_bytes())
    assert data["completed"] == 6 and data["total_output_tokens"] == 48
    assert "p99.9_itl_ms" in data and "p50_ttft_ms" in data and data["label"] == "cli"
    bad = await asyncio.to_thread(CliRunner().invoke, app, [*args[:5], "--concurrency", "0"])
    assert bad.exit_code == 2
