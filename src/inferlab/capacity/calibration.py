"""What one replica serves within the SLO: a measured number, or an ``inferlab bench`` report of
one replica (its ``request_throughput``, believed only if its p95 TTFT met the SLO)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from inferlab.config.capacity import ModelCapacity
from inferlab.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class ReplicaThroughput:
    requests_per_s: float
    source: str  # "configured", or the report's path


def from_report(path: Path, slo_ttft_ms: float) -> ReplicaThroughput:
    try:
        report = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidRequest(f"benchmark report {path}: {exc}", param="benchmark_report") from None
    throughput = report.get("request_throughput") if isinstance(report, dict) else None
    if not isinstance(throughput, (int, float)) or throughput <= 0:
        raise InvalidRequest(f"benchmark report {path} has no request_throughput above 0", param="benchmark_report")
    ttft = report.get("p95_ttft_ms", report.get("p99_ttft_ms", report.get("mean_ttft_ms")))
    if not isinstance(ttft, (int, float)):
        raise InvalidRequest(f"benchmark report {path} has no TTFT percentile (p95_ttft_ms) to check the SLO against",
                             param="benchmark_report")
    if ttft > slo_ttft_ms:
        raise InvalidRequest(f"benchmark report {path}: its p95 TTFT {ttft:.0f} ms is over the SLO's "
                             f"{slo_ttft_ms:.0f} ms, so its throughput is not one within the SLO; run it at a "
                             f"lower rate or concurrency", param="benchmark_report")
    return ReplicaThroughput(float(throughput), str(path))


def replica_throughput(model: str, config: ModelCapacity | None, estimate: float | None = None,
                       *, estimated: str = "estimated") -> ReplicaThroughput:
    """The measured throughput; else the planning toolkit's ``estimate`` (labelled ``estimated``)."""
    if config is not None and config.replica_requests_per_s is not None:
        return ReplicaThroughput(config.replica_requests_per_s, "configured")
    if config is not None and config.benchmark_report is not None:
        return from_report(config.benchmark_report, config.slo_ttft_ms)
    if estimate is not None:
        return ReplicaThroughput(estimate, estimated)
    raise InvalidRequest(f"model {model!r} has no measured replica throughput: set "
                         f"capacity.models.{model}.replica_requests_per_s or .benchmark_report (an `inferlab bench` "
                         f"report of one replica at the SLO), or pass --throughput {model}=<requests/s> (or, for an "
                         f"unmeasured estimate, .catalogue_model and .hardware)",
                         param="replica_requests_per_s")
