"""Anomaly detector: detection cost per series update and precision/recall on a large labelled set.

Generates the seeded labelled set of ``inferlab.anomaly.synthetic`` (seasonal series with spikes,
level shifts and slow drifts; replica groups with one bad replica), runs every series through the
detector and the incident tracker as the service does, and reports:

  cost        µs per series update (detector + tracker), and what one interval of the service
              costs for N series at that rate
  accuracy    precision, recall and detection latency (intervals), per incident type
  backtest    the capacity planner's forecast error on synthetic hourly history (MAPE/WAPE/sMAPE)

    python bench/anomaly.py                      # 1,000 series + 300 groups, seeds 11/12
    python bench/anomaly.py --series 200 --groups 60
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np

from inferlab.anomaly.detector import SeriesDetector, Tuning
from inferlab.anomaly.evaluation import evaluate
from inferlab.anomaly.synthetic import PERIOD, labelled_groups, labelled_series
from inferlab.metering.forecast import backtest


def cost(updates: int) -> float:
    """µs per update of one seasonal series detector alone, warmed (a week of history)."""
    rng = np.random.default_rng(3)
    values = (100 + 10 * np.sin(np.arange(updates) * 2 * np.pi / PERIOD) + rng.normal(0, 1, updates)).tolist()
    detector = SeriesDetector(Tuning(period=PERIOD))
    started = time.perf_counter()
    for at, value in enumerate(values):
        detector.update(at, value)
    return (time.perf_counter() - started) / updates * 1e6


def hourly(days: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    hour, weekday = hours % 24, (hours // 24) % 7
    base = rng.uniform(50, 500)
    daily = base * (0.3 + np.exp(-0.5 * ((hour - rng.uniform(10, 16)) / 3.0) ** 2))
    weekly = np.where(weekday >= 5, rng.uniform(0.4, 0.9), 1.0)
    return [float(v) for v in np.clip(daily * weekly * rng.normal(1, 0.08, len(hours)), 0, None)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--forecasts", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}")

    per_update = [cost(20 * PERIOD) for _ in range(5)]
    median = statistics.median(per_update)
    print(f"cost: {median:.1f} µs per update of a seasonal series (median of 5 runs of {20 * PERIOD}; "
          f"min {min(per_update):.1f}) → one interval of 10,000 series: {median * 10_000 / 1000:.0f} ms")

    started = time.perf_counter()
    series = labelled_series(args.seed, args.series)
    groups = labelled_groups(args.seed + 1, args.groups)
    generated = time.perf_counter() - started
    score = evaluate(series, groups, Tuning())
    print(f"set: {args.series} series + {args.groups} replica groups, {score.updates:,} series updates, "
          f"{score.labelled} labelled incidents (generated in {generated:.1f} s)")
    print(f"accuracy: precision {score.precision:.3f} ({score.true_opened}/{score.opened} opened incidents true), "
          f"recall {score.recall:.3f} ({score.detected}/{score.labelled} within 2 intervals)")
    latencies = np.array(score.latencies)
    print("latency (intervals after onset): " + ", ".join(f"{k}: {int(np.sum(latencies == k))}" for k in range(3)))
    for kind, (labelled, detected) in sorted(score.by_type.items()):
        print(f"  {kind:<12} {detected}/{labelled} = {detected / labelled:.3f}")
    print(f"cost in the evaluation (detector + tracker): {score.seconds / score.updates * 1e6:.1f} µs per update")

    errors = [backtest(hourly(28, args.seed + i), 48, period=168) for i in range(args.forecasts)]
    for name in ("mape", "wape", "smape"):
        found = [getattr(e, name) for e in errors if getattr(e, name) is not None]
        print(f"capacity forecast backtest, {args.forecasts} models × 28 days hourly, 48 h held out: "
              f"{name.upper()} median {statistics.median(found):.3f}, p90 {np.percentile(found, 90):.3f}")


if __name__ == "__main__":
    main()
