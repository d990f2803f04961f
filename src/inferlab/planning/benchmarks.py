"""Compare the speed model with published speeds and latencies (``data/benchmarks.yaml``).

Every figure carries its stated error (``tolerance``, default :data:`TOLERANCE`); the validation
test requires each estimate to be within it and lists every one that is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment, resolve_deployment
from inferlab.planning.speculative import Speculation
from inferlab.planning.throughput import estimate_throughput, max_throughput, saturated_batch

#: An estimate within this relative distance of the published figure counts as agreeing.
TOLERANCE = 0.30


@dataclass(frozen=True)
class BenchmarkComparison:
    label: str
    setup: str
    metric: str
    published: float
    estimate: float
    source: str
    assumed: str
    date: str = ""
    tolerance: float = TOLERANCE
    why: str = ""  # for a known gap: why the model does not reach it

    @property
    def ratio(self) -> float:
        return self.estimate / self.published

    @property
    def within_tolerance(self) -> bool:
        return abs(self.ratio - 1) <= self.tolerance


def _load(section: str) -> list[dict[str, Any]]:
    text = resources.files("inferlab.planning").joinpath("data/benchmarks.yaml").read_text(encoding="utf-8")
    return list(yaml.safe_load(text).get(section) or [])


def load_benchmarks() -> list[dict[str, Any]]:
    """The validation set: every figure must be within its stated error."""
    return _load("benchmarks")


def load_known_gaps() -> list[dict[str, Any]]:
    """Published figures the model does not reach, reported with their estimate (never dropped)."""
    return _load("known_gaps")


def compare(catalogue: Catalogue, row: Mapping[str, Any]) -> BenchmarkComparison:
    d = resolve_deployment(
        catalogue,
        model=row["model"],
        gpu=row["device"],
        quant=row["quant"],
        kv_dtype=row.get("kv_dtype", "f16"),
        engine=row["engine"],
        gpus=int(row.get("count", 1)),
        memory_gb=row.get("memory_gb"),
        expert_parallel=bool(row.get("expert_parallel", False)),
    )
    return BenchmarkComparison(
        label=str(row.get("label", row["metric"])),
        setup=d.label(),
        metric=str(row["metric"]),
        published=float(row["published"]),
        estimate=_estimate(catalogue, d, row),
        source=str(row.get("source", "")),
        assumed=str(row.get("assumed", "")),
        date=str(row.get("date", "")),
        tolerance=float(row.get("tolerance", TOLERANCE)),
        why=str(row.get("why", row.get("tolerance_reason", ""))),
    )


def _estimate(catalogue: Catalogue, d: Deployment, row: Mapping[str, Any]) -> float:
    metric = row["metric"]
    concurrency = int(row.get("concurrency", 1))
    if metric in ("decode_batch1", "itl_ms", "decode_tok_s"):
        context = int(row.get("context", 256))
        est = estimate_throughput(catalogue, d, prompt_tokens=context, output_tokens=1, concurrency=concurrency)
        return est.itl_s * 1000 if metric == "itl_ms" else est.tokens_per_s_per_stream
    if metric == "speculative_speedup":
        context = int(row.get("context", 256))
        spec = Speculation(int(row["draft_tokens"]), float(row["acceptance_length"]), float(row["draft_params_b"]))
        plain = estimate_throughput(catalogue, d, prompt_tokens=context, output_tokens=1, concurrency=concurrency)
        fast = estimate_throughput(catalogue, d, prompt_tokens=context, output_tokens=1, concurrency=concurrency,
                                   speculation=spec)
        return fast.tokens_per_s_per_stream / plain.tokens_per_s_per_stream
    if metric in ("ttft_ms", "request_latency_s"):
        est = estimate_throughput(catalogue, d, prompt_tokens=int(row["isl"]), output_tokens=int(row.get("osl", 1)),
                                  concurrency=concurrency)
        value = est.ttft_s if metric == "ttft_ms" else est.request_latency_s
        if value is None:
            raise ValueError(f"no compute figure for {d.accelerator.id}: cannot estimate {metric}")
        return value * 1000 if metric == "ttft_ms" else value
    if metric == "max_throughput":
        return max_throughput(catalogue, d, isl=int(row["isl"]), osl=int(row["osl"])).output_tokens_per_s
    if metric == "concurrent":
        isl, osl = int(row["isl"]), int(row["osl"])
        # A server runs at most what its KV pool holds; further requests wait in its queue.
        running = min(concurrency, max(1, saturated_batch(catalogue, d, isl, osl, concurrency)))
        est = estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=running)
        return est.output_tokens_per_s
    raise ValueError(f"unknown benchmark metric {metric!r}")


def compare_all(catalogue: Catalogue) -> list[BenchmarkComparison]:
    return [compare(catalogue, row) for row in load_benchmarks()]


def compare_known_gaps(catalogue: Catalogue) -> list[BenchmarkComparison]:
    return [compare(catalogue, row) for row in load_known_gaps()]
