"""One window's figures for one tier and model: pure arithmetic over a ``Summary``."""

from __future__ import annotations

import math
from typing import Any

from inferlab.config.tenants import SloTargets
from inferlab.slo.window import Summary, percentile_s


def burn_rate(good: int, bad: int, objective: float) -> float | None:
    """The bad fraction over the error budget (1 − objective); None without requests."""
    total = good + bad
    if not total:
        return None
    budget = 1.0 - objective
    return (bad / total) / budget if budget > 0 else (math.inf if bad else 0.0)


def _ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return None if math.isinf(seconds) else round(seconds * 1000, 3)


def _latency(good: int, bad: int, histogram: list[int], target_ms: float | None,
             objective: float | None) -> dict[str, Any] | None:
    if target_ms is None or objective is None:
        return None
    total = good + bad
    p95 = percentile_s(histogram, 0.95)
    return {
        "target_ms": target_ms, "objective": objective, "requests": total, "good": good,
        "p95_ms": _ms(p95), "attainment": good / total if total else None,
        "met": (good / total >= objective) if total else None,
        "burn_rate": burn_rate(good, bad, objective),
    }


def window_report(summary: Summary, targets: SloTargets, objectives: dict[str, float]) -> dict[str, Any]:
    counts = summary.counts
    ok, failed = counts["ok"], counts["failed"]
    availability = None
    if "availability" in objectives:
        objective = objectives["availability"]
        total = ok + failed
        availability = {
            "objective": objective, "requests": total, "good": ok,
            "attainment": ok / total if total else None,
            "met": (ok / total >= objective) if total else None,
            "burn_rate": burn_rate(ok, failed, objective),
        }
    return {
        "window_s": summary.window_s,
        "ttft": _latency(counts["ttft_good"], counts["ttft_bad"], summary.ttft, targets.ttft_p95_ms,
                         objectives.get("ttft")),
        "tpot": _latency(counts["tpot_good"], counts["tpot_bad"], summary.tpot, targets.tpot_p95_ms,
                         objectives.get("tpot")),
        "availability": availability,
    }
