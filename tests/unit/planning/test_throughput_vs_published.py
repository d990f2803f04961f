"""The throughput estimator against published speeds (hardware.yaml ``reference_benchmarks``).

Run with ``-s`` to see the table of estimate vs published.
"""

from __future__ import annotations

from inferlab.planning import load_catalogue
from inferlab.planning.benchmarks import TOLERANCE, compare_all


def test_at_least_80_percent_of_published_figures_within_30_percent() -> None:
    rows = compare_all(load_catalogue())
    print()
    print(f"{'setup':58} {'metric':36} {'published':>10} {'estimate':>10} {'ratio':>6}")
    for r in rows:
        flag = "" if r.within_tolerance else "  <-- off"
        print(f"{r.setup:58} {r.label[:36]:36} {r.published:10.2f} {r.estimate:10.2f} {r.ratio:6.2f}{flag}")
    agreeing = sum(r.within_tolerance for r in rows)
    print(f"{agreeing}/{len(rows)} within ±{TOLERANCE:.0%}")
    assert len(rows) >= 25
    assert agreeing / len(rows) >= 0.80
