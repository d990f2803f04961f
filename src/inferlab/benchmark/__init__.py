"""Serving benchmark for any OpenAI-compatible server (``inferlab bench``), usable as a library."""

from inferlab.benchmark.client import RequestOutcome
from inferlab.benchmark.config import BenchmarkConfig, BenchmarkConfigError
from inferlab.benchmark.metrics import BenchmarkResult
from inferlab.benchmark.runner import run_benchmark
from inferlab.benchmark.workload import WorkloadError

__all__ = [
    "BenchmarkConfig",
    "BenchmarkConfigError",
    "BenchmarkResult",
    "RequestOutcome",
    "WorkloadError",
    "run_benchmark",
]
