"""The overhead benchmark's tables: figures per target, and each gateway against the pass-through.

``results[scenario][target]`` is ``BenchmarkResult.to_dict()`` plus ``gateway_cpu_ms_per_request``
(user + system CPU of the target's process per request, warm-up included; None for "direct").
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, dict[str, Any]]]
Rounds = dict[str, dict[str, list[dict[str, Any]]]]  # scenario → target → one row per round
BASELINES = ("direct", "passthrough")
MIN_ROUNDS_FOR_INTERVAL = 5


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over the rounds (failures summed); the rest from the first."""
    if len(rows) == 1:
        return rows[0]
    merged = dict(rows[0])
    for key, value in rows[0].items():
        values = [row[key] for row in rows]
        if key == "failed":
            merged[key] = sum(values)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and None not in values:
            merged[key] = statistics.median(values)
    merged["rounds"] = len(rows)
    return merged


@dataclass(frozen=True)
class Goal:
    """One goal of the refactor, as a figure of a target relative to the pass-through's."""

    key: str
    header: str
    measure: Callable[[Results, str], float | None]
    at_most: float | None = None
    at_least: float | None = None

    def met(self, value: float) -> bool:
        return (self.at_most is None or value <= self.at_most) and (self.at_least is None or value >= self.at_least)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom <= 0:
        return None
    return top / bottom


def _cpu(results: Results, scenario: str, name: str) -> float | None:
    value = results[scenario][name].get("gateway_cpu_ms_per_request")
    return float(value) if value is not None else None


def _added_ttft(results: Results, name: str) -> float:
    stream = results["stream"]
    return float(stream[name]["p50_ttft_ms"] - stream["direct"]["p50_ttft_ms"])


GOALS = (
    Goal("cpu_per_stream_request_ratio", "gateway CPU per streamed request ÷ pass-through's (≤ 1.2)",
         lambda r, n: _ratio(_cpu(r, "stream", n), _cpu(r, "stream", "passthrough")), at_most=1.2),
    Goal("stream_ttft_added_ratio", "stream TTFT p50 added ÷ pass-through's added (≤ 1.2)",
         lambda r, n: _ratio(_added_ttft(r, n), _added_ttft(r, "passthrough")), at_most=1.2),
    Goal("c1_added_p50_minus_passthrough_ms", "c=1 added p50 − pass-through's added p50, ms (≤ 0.3)",
         lambda r, n: r["latency"][n]["p50_e2el_ms"] - r["latency"]["passthrough"]["p50_e2el_ms"], at_most=0.3),
    Goal("c32_throughput_ratio", "c=32 req/s ÷ pass-through's (≥ 0.8)",
         lambda r, n: _ratio(r["throughput"][n]["request_throughput"],
                             r["throughput"]["passthrough"]["request_throughput"]), at_least=0.8),
)


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _fmt_cpu(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _cells(results: Results, name: str) -> list[str]:
    """The table's figures for one target; a dash for each scenario the run left out."""
    cells = ["—"] * 7
    lat = results.get("latency")
    if lat is not None and name in lat:
        mine, direct = lat[name], lat["direct"]
        cells[0:4] = [_fmt(mine["p50_e2el_ms"]), _fmt(mine["p50_e2el_ms"] - direct["p50_e2el_ms"]),
                      _fmt(mine["p99_e2el_ms"]), _fmt(mine["p99_e2el_ms"] - direct["p99_e2el_ms"])]
    thr = results.get("throughput")
    if thr is not None and name in thr:
        cells[4] = f"{thr[name]['request_throughput']:.0f}"
    stream = results.get("stream")
    if stream is not None and name in stream:
        row = stream[name]
        cells[5:7] = [f"{_fmt(row['p50_ttft_ms'])} / {_fmt(row['p99_ttft_ms'])}",
                      f"{_fmt(row['p50_itl_ms'])} / {_fmt(row['p99_itl_ms'])}"]
    return cells


def markdown_table(results: Results, names: list[str]) -> str:
    header = ("| target | c=1 p50 ms | added p50 ms | c=1 p99 ms | added p99 ms | c=32 req/s "
              "| stream TTFT p50 / p99 ms | ITL p50 / p99 ms | CPU ms/req c=1 / c=32 / stream | failed |")
    lines = [header, "|" + "---|" * 10]
    for name in names:
        failed = sum(results[s][name]["failed"] for s in results)
        cpu = " / ".join(_fmt_cpu(_cpu(results, s, name)) if s in results else "—"
                         for s in ("latency", "throughput", "stream"))
        cells = _cells(results, name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {cpu} | {failed} |")
    return "\n".join(lines)


def goal_ratios(results: Results, names: list[str]) -> dict[str, dict[str, float | None]]:
    """Each non-baseline target's figures against the pass-through's (empty without a pass-through)."""
    if not any("passthrough" in rows for rows in results.values()):
        return {}
    return {name: {goal.key: _measured(goal, results, name) for goal in GOALS}
            for name in names if name not in BASELINES}


def _measured(goal: Goal, results: Results, name: str) -> float | None:
    try:
        return goal.measure(results, name)
    except KeyError:  # a scenario this run left out
        return None


def goal_intervals(rounds: Rounds, names: list[str], *, draws: int = 2000, seed: int = 1,
                   ) -> dict[str, dict[str, tuple[float, float] | None]]:
    """Each goal's 90 % interval, by a paired bootstrap over the rounds: the same rounds drawn for
    every target (a round's targets ran minutes apart, on the same machine state), the medians
    taken again, the goal measured again. None where a scenario had fewer than five rounds."""
    sizes = {len(rows) for by_target in rounds.values() for rows in by_target.values()}
    if not sizes or min(sizes) < MIN_ROUNDS_FOR_INTERVAL or "passthrough" not in next(iter(rounds.values())):
        return {}
    pick = random.Random(seed)
    drawn: dict[str, dict[str, list[float]]] = {name: {goal.key: [] for goal in GOALS} for name in names
                                                if name not in BASELINES}
    for _ in range(draws):
        sample: Results = {}
        for scenario, by_target in rounds.items():
            count = len(next(iter(by_target.values())))
            chosen = [pick.randrange(count) for _ in range(count)]
            sample[scenario] = {name: median_row([rows[i] for i in chosen]) for name, rows in by_target.items()}
        for name, per_goal in drawn.items():
            for goal in GOALS:
                value = _measured(goal, sample, name)
                if value is not None:
                    per_goal[goal.key].append(value)
    return {name: {key: _interval(values) for key, values in per_goal.items()} for name, per_goal in drawn.items()}


def _interval(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 20:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) * 5 // 100], ordered[len(ordered) * 95 // 100 - 1]


def ratio_table(ratios: dict[str, dict[str, float | None]],
                intervals: dict[str, dict[str, tuple[float, float] | None]] | None = None) -> str:
    """Each goal's figure, met or missed; with its 90 % interval when the run had enough rounds
    (a goal is shown only when the whole interval is on the right side)."""
    if not ratios:
        return ""
    lines = ["| target | " + " | ".join(goal.header for goal in GOALS) + " |", "|" + "---|" * (len(GOALS) + 1)]
    for name, values in ratios.items():
        cells = []
        for goal in GOALS:
            value = values[goal.key]
            if value is None:
                cells.append("n/a")
                continue
            cell = f"{value:.2f} {'met' if goal.met(value) else 'missed'}"
            spread = (intervals or {}).get(name, {}).get(goal.key)
            if spread is not None:
                shown = goal.met(spread[0]) and goal.met(spread[1])
                cell += f" (90 %: {spread[0]:.2f}–{spread[1]:.2f}{', shown' if shown else ''})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
