"""Show a benchmark: a live progress bar, a summary table, and the JSON result file."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from inferlab.benchmark.client import RequestOutcome
from inferlab.benchmark.metrics import LATENCY_METRICS, BenchmarkResult, percentile_key
from inferlab.benchmark.runner import OnResult

_METRIC_TITLES = {
    "ttft": "Time to first token",
    "tpot": "Time per output token (excl. 1st)",
    "itl": "Inter-token latency",
    "e2el": "End-to-end latency",
}


@contextmanager
def progress_bar(console: Console, total: int, *, enabled: bool) -> Iterator[OnResult]:
    """Yield an ``on_result`` callback that advances a rich progress bar (a no-op when disabled)."""
    progress = Progress(
        TextColumn("[bold]bench"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed: {task.fields[failed]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )
    task = progress.add_task("requests", total=total, failed=0)
    failed = 0

    def advance(outcome: RequestOutcome) -> None:
        nonlocal failed
        failed += 0 if outcome.success else 1
        progress.update(task, advance=1, failed=failed)

    with progress:
        yield advance


def summary_table(result: BenchmarkResult) -> Table:
    """The run's figures as a two-column table, in the order ``vllm bench serve`` prints them."""
    config = result.config
    title = "Serving benchmark" + (f" — {config.label}" if config.label else "")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    rate = f"{config.request_rate:g}" if math.isfinite(config.request_rate) else "inf"
    rows = [
        ("Target", config.url),
        ("Mode", "stream" if config.stream else "no stream"),
        ("Request rate (req/s)", rate),
        ("Maximum concurrency", str(config.concurrency or "-")),
        ("Successful requests", str(result.completed)),
        ("Failed requests", str(result.failed)),
        ("Benchmark duration (s)", f"{result.duration:.2f}"),
        ("Total input tokens", str(result.total_input_tokens)),
        ("Total generated tokens", str(result.total_output_tokens)),
        ("Request throughput (req/s)", f"{result.request_throughput:.2f}"),
        ("Output token throughput (tok/s)", f"{result.output_throughput:.2f}"),
        ("Total token throughput (tok/s)", f"{result.total_token_throughput:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for metric in LATENCY_METRICS:
        table.add_section()
        table.add_row(f"[bold]{_METRIC_TITLES[metric]} (ms)", "")
        table.add_row("  mean / median / std", " / ".join(
            f"{result.latency_ms[f'{stat}_{metric}_ms']:.2f}" for stat in ("mean", "median", "std")
        ))
        for p in config.percentiles:
            key = percentile_key(p, metric)
            table.add_row(f"  {key.split('_')[0].upper()}", f"{result.latency_ms[key]:.2f}")
    if result.errors:
        table.add_section()
        for reason, count in result.errors.items():
            table.add_row(f"[red]error: {reason}", str(count))
    return table


def write_json(result: BenchmarkResult, path: Path) -> None:
    """Write ``result.to_dict()`` as indented JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
