"""Turn request outcomes into serving metrics named like ``vllm bench serve``'s JSON result.

TTFT, TPOT, ITL and E2EL are summarised as ``mean_<m>_ms``, ``median_<m>_ms``, ``std_<m>_ms``
(population standard deviation) and ``p<P>_<m>_ms`` (linear interpolation between closest ranks,
numpy's default). TPOT = (e2el - ttft) / (output_tokens - 1) over requests with more than one
output token; ITL pools the gaps between consecutive content chunks of all requests.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inferlab.benchmark.client import RequestOutcome
from inferlab.benchmark.config import BenchmarkConfig

LATENCY_METRICS = ("ttft", "tpot", "itl", "e2el")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 to 100) of already-sorted values, interpolating linearly."""
    if not sorted_values:
        return 0.0
    rank = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def percentile_key(p: float, metric: str) -> str:
    word = str(int(p)) if float(p).is_integer() else str(p)
    return f"p{word}_{metric}_ms"


def summarize_latency(
    metric: str, seconds: Sequence[float], percentiles: Sequence[float]
) -> dict[str, float]:
    values = sorted(s * 1000.0 for s in seconds)
    summary = {
        f"mean_{metric}_ms": statistics.fmean(values) if values else 0.0,
        f"median_{metric}_ms": statistics.median(values) if values else 0.0,
        f"std_{metric}_ms": statistics.pstdev(values) if values else 0.0,
    }
    for p in percentiles:
        summary[percentile_key(p, metric)] = percentile(values, p)
    return summary


@dataclass
class BenchmarkResult:
    """The outcome of one run. ``to_dict()`` gives the flat, vLLM-named JSON result."""

    config: BenchmarkConfig
    duration: float
    completed: int
    failed: int
    total_input_tokens: int
    total_output_tokens: int
    latency_ms: dict[str, float]
    errors: dict[str, int]
    outcomes: list[RequestOutcome] = field(repr=False, default_factory=list)
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))

    @property
    def request_throughput(self) -> float:
        return self.completed / self.duration if self.duration > 0 else 0.0

    @property
    def output_throughput(self) -> float:
        return self.total_output_tokens / self.duration if self.duration > 0 else 0.0

    @property
    def total_token_throughput(self) -> float:
        total = self.total_input_tokens + self.total_output_tokens
        return total / self.duration if self.duration > 0 else 0.0

    def metric(self, name: str) -> Any:
        """One value of the JSON result by its vLLM name, e.g. ``metric("p99_ttft_ms")``."""
        return self.to_dict()[name]

    def to_dict(self) -> dict[str, Any]:
        config = self.config
        result: dict[str, Any] = {
            "date": self.date,
            "label": config.label,
            "base_url": config.base_url,
            "endpoint_type": config.endpoint,
            "model_id": config.model,
            "stream": config.stream,
            "num_prompts": config.num_prompts,
            "max_tokens": config.max_tokens,
            "request_rate": config.request_rate if math.isfinite(config.request_rate) else "inf",
            "max_concurrency": config.concurrency,
            "duration": self.duration,
            "completed": self.completed,
            "failed": self.failed,
            "total_input_tokens": self.total_input_tokens,
            "total_output_tokens": self.total_output_tokens,
            "request_throughput": self.request_throughput,
            "output_throughput": self.output_throughput,
            "total_token_throughput": self.total_token_throughput,
            **self.latency_ms,
            "errors": dict(self.errors),
        }
        if config.save_detailed:
            result.update(_detailed(self.outcomes))
        return result


def _detailed(outcomes: Sequence[RequestOutcome]) -> dict[str, list[Any]]:
    """Per-request lists (seconds), as ``vllm bench serve --save-detailed`` writes them."""
    return {
        "input_lens": [o.input_tokens for o in outcomes],
        "output_lens": [o.output_tokens for o in outcomes],
        "ttfts": [o.ttft for o in outcomes],
        "e2els": [o.e2el for o in outcomes],
        "itls": [o.itl for o in outcomes],
        "request_errors": [o.error for o in outcomes],
    }


def build_result(config: BenchmarkConfig, outcomes: list[RequestOutcome], duration: float) -> BenchmarkResult:
    done = [o for o in outcomes if o.success]
    tpots = [(o.e2el - o.ttft) / (o.output_tokens - 1) for o in done if o.output_tokens > 1]
    series = {
        "ttft": [o.ttft for o in done],
        "tpot": tpots,
        "itl": [gap for o in done for gap in o.itl],
        "e2el": [o.e2el for o in done],
    }
    latency: dict[str, float] = {}
    for metric in LATENCY_METRICS:
        latency.update(summarize_latency(metric, series[metric], config.percentiles))
    errors = Counter(o.error or "unknown" for o in outcomes if not o.success)
    return BenchmarkResult(
        config=config,
        duration=duration,
        completed=len(done),
        failed=len(outcomes) - len(done),
        total_input_tokens=sum(o.input_tokens for o in done),
        total_output_tokens=sum(o.output_tokens for o in done),
        latency_ms=latency,
        errors=dict(errors.most_common()),
        outcomes=outcomes,
    )
