"""A rolling window of request outcomes: a ring of time slots, each with its counts and two
latency histograms, summed over the last N seconds when asked.

Recording costs a few list updates; a summary over a window costs O(slots × buckets) and is only
made for ``GET /admin/slo``. Latencies go in logarithmic buckets (×1.2 from 1 ms to ~10 min), so
a percentile is reported as the upper bound of its bucket: at most 20 % above the true value,
never below it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

BOUNDS_S: tuple[float, ...] = tuple(0.001 * 1.2 ** i for i in range(75))  # 1 ms … ~850 s
OUTCOMES = ("ttft_good", "ttft_bad", "tpot_good", "tpot_bad", "ok", "failed")


class _Slot:
    __slots__ = ("counts", "stamp", "tpot", "ttft")

    def __init__(self) -> None:
        self.stamp = -1  # never used yet: allocated on first use
        self.counts: list[int] = []
        self.ttft: list[int] = []
        self.tpot: list[int] = []

    def reset(self, stamp: int) -> None:
        self.stamp = stamp
        self.counts = [0] * len(OUTCOMES)
        self.ttft = [0] * (len(BOUNDS_S) + 1)
        self.tpot = [0] * (len(BOUNDS_S) + 1)


@dataclass(frozen=True, slots=True)
class Summary:
    """The outcomes of one window."""

    window_s: float
    counts: dict[str, int]
    ttft: list[int]
    tpot: list[int]


def percentile_s(histogram: list[int], quantile: float) -> float | None:
    """The upper bound of the bucket holding the quantile (None without samples; inf past the last)."""
    total = sum(histogram)
    if not total:
        return None
    rank = math.ceil(quantile * total)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return BOUNDS_S[index] if index < len(BOUNDS_S) else math.inf
    return math.inf


class RollingWindow:
    def __init__(self, slot_s: float, span_s: float, clock: Callable[[], float]) -> None:
        self.slot_s = slot_s
        self._clock = clock
        self._slots = [_Slot() for _ in range(max(1, math.ceil(span_s / slot_s)))]

    def _slot(self) -> _Slot:
        stamp = int(self._clock() // self.slot_s)
        slot = self._slots[stamp % len(self._slots)]
        if slot.stamp != stamp:
            slot.reset(stamp)
        return slot

    def record(self, *, ttft_s: float | None = None, ttft_good: bool = False, tpot_s: float | None = None,
               tpot_good: bool = False, available: bool | None = None) -> None:
        slot = self._slot()
        counts = slot.counts
        if ttft_s is not None:
            slot.ttft[bisect.bisect_left(BOUNDS_S, ttft_s)] += 1
            counts[0 if ttft_good else 1] += 1
        if tpot_s is not None:
            slot.tpot[bisect.bisect_left(BOUNDS_S, tpot_s)] += 1
            counts[2 if tpot_good else 3] += 1
        if available is not None:
            counts[4 if available else 5] += 1

    def summary(self, window_s: float) -> Summary:
        newest = int(self._clock() // self.slot_s)
        oldest = newest - min(len(self._slots), max(1, math.ceil(window_s / self.slot_s))) + 1
        counts = [0] * len(OUTCOMES)
        ttft = [0] * (len(BOUNDS_S) + 1)
        tpot = [0] * (len(BOUNDS_S) + 1)
        for slot in self._slots:
            if slot.stamp >= 0 and oldest <= slot.stamp <= newest:
                counts = [a + b for a, b in zip(counts, slot.counts, strict=True)]
                ttft = [a + b for a, b in zip(ttft, slot.ttft, strict=True)]
                tpot = [a + b for a, b in zip(tpot, slot.tpot, strict=True)]
        return Summary(window_s, dict(zip(OUTCOMES, counts, strict=True)), ttft, tpot)
