"""The ``inferlab bench`` command; ``register(app)`` adds it to a Typer application."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from inferlab.benchmark.config import BenchmarkConfig, BenchmarkConfigError, Endpoint
from inferlab.benchmark.report import progress_bar, summary_table, write_json
from inferlab.benchmark.runner import run_benchmark
from inferlab.benchmark.workload import WorkloadError

BENCH_HELP = "Benchmark an OpenAI-compatible server: throughput, TTFT, TPOT, ITL and end-to-end latency."


def _parse_percentiles(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from exc


def bench(
    base_url: Annotated[str, typer.Option(help="Server base URL, e.g. http://127.0.0.1:8000/v1.")],
    model: Annotated[str, typer.Option(help="Model name sent in each request.")],
    api_key: Annotated[str | None, typer.Option(help="Sent as 'Authorization: Bearer ...'.")] = None,
    endpoint: Annotated[str, typer.Option(help="chat (/chat/completions) or completions.")] = "chat",
    num_prompts: Annotated[int, typer.Option(help="Timed requests to send.")] = 100,
    concurrency: Annotated[int | None, typer.Option(help="Maximum requests in flight.")] = None,
    request_rate: Annotated[
        float, typer.Option(help="Poisson arrival rate in req/s; inf = all at once.")
    ] = math.inf,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Stream responses (SSE).")] = True,
    max_tokens: Annotated[int, typer.Option(help="max_tokens of each request.")] = 128,
    temperature: Annotated[
        float | None, typer.Option(help="temperature of each request (default: not sent).")
    ] = None,
    prompt_words: Annotated[
        int, typer.Option("--prompt-words", "--input-len", help="Words per synthetic prompt.")
    ] = 32,
    prompt_file: Annotated[Path | None, typer.Option(help="JSONL: strings, {prompt} or {messages}.")] = None,
    warmup: Annotated[int, typer.Option(help="Untimed requests sent first.")] = 0,
    percentiles: Annotated[str, typer.Option(help="Comma-separated percentiles to report.")] = "50,90,99",
    timeout: Annotated[float, typer.Option(help="Per-request timeout in seconds.")] = 300.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON result here.")] = None,
    label: Annotated[str | None, typer.Option(help="A name for this run, kept in the result.")] = None,
    save_detailed: Annotated[bool, typer.Option(help="Keep per-request timings in the JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of prompts and arrival times.")] = 0,
    keepalive: Annotated[
        bool, typer.Option(help="Reuse connections (--no-keepalive: one per request, for llama-server).")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    console = Console()
    if endpoint not in ("chat", "completions"):
        raise typer.BadParameter("must be 'chat' or 'completions'", param_hint="--endpoint")
    chosen: Endpoint = "chat" if endpoint == "chat" else "completions"
    try:
        config = BenchmarkConfig(
            base_url=base_url, model=model, api_key=api_key, endpoint=chosen, num_prompts=num_prompts,
            concurrency=concurrency, request_rate=request_rate, stream=stream, max_tokens=max_tokens,
            temperature=temperature, prompt_words=prompt_words, prompt_file=prompt_file, warmup=warmup,
            percentiles=_parse_percentiles(percentiles), timeout=timeout, label=label,
            save_detailed=save_detailed, seed=seed, keepalive=keepalive,
        )
    except BenchmarkConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    show_progress = not quiet and console.is_terminal
    try:
        with progress_bar(console, config.num_prompts, enabled=show_progress) as on_result:
            result = asyncio.run(run_benchmark(config, on_result=on_result))
    except WorkloadError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(summary_table(result))
    if json_path is not None:
        write_json(result, json_path)
        console.print(f"result written to {json_path}")
    if result.completed == 0:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""
    app.command("bench", help=BENCH_HELP)(bench)
