"""Compare the throughput estimator with published speeds (``data/benchmarks.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import resolve_deployment
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

    @property
    def ratio(self) -> float:
        return self.estimate / self.published

    @property
    def within_tolerance(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE


def load_benchmarks() -> list[dict[str, Any]]:
    text = resources.files("inferlab.planning").joinpath("data/benchmarks.yaml").read_text(encoding="utf-8")
    return list(yaml.safe_load(text)["benchmarks"])


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
    )
    metric = row["metric"]
    if metric in ("decode_batch1", "itl_ms"):
        context = int(row.get("context", 256))
        est = estimate_throughput(catalogue, d, prompt_tokens=context, output_tokens=1)
        value = est.itl_s * 1000 if metric == "itl_ms" else est.tokens_per_s_per_stream
    elif metric == "max_throughput":
        value = max_throughput(catalogue, d, isl=int(row["isl"]), osl=int(row["osl"])).output_tokens_per_s
    elif metric == "concurrent":
        isl, osl = int(row["isl"]), int(row["osl"])
        # A server runs at most what its KV pool holds; further requests wait in its queue.
        running = min(int(row["concurrency"]), max(1, saturated_batch(catalogue, d, isl, osl, int(row["concurrency"]))))
        est = estimate_throughput(catalogue, d, prompt_tokens=isl, output_tokens=osl, concurrency=running)
        value = est.output_tokens_per_s
    else:
        raise ValueError(f"unknown benchmark metric {metric!r}")
    return BenchmarkComparison(
        label=str(row.get("label", metric)),
        setup=d.label(),
        metric=metric,
        published=float(row["published"]),
        estimate=value,
        source=str(row.get("source", "")),
        assumed=str(row.get("assumed", "")),
    )


def compare_all(catalogue: Catalogue) -> list[BenchmarkComparison]:
    return [compare(catalogue, row) for row in load_benchmarks()]
