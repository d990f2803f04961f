"""Anomalies in one metric's series, one interval at a time: pure, over plain numbers.

Each interval's value ``y`` goes through three steps:

1. **seasonal removal** — the expected value of this slot is the median of the *clean* values at
   the same slot of up to ``seasons`` previous periods (a day, a week), once one period of
   history exists; before that, nothing is removed. The residual is ``r = y − profile``.
2. **robust z** — ``z = (r − median) / scale`` against the last ``window`` clean residuals, with
   ``scale = max(1.4826·MAD, floor_abs, floor_rel·|level|)`` (the floors keep a flat series, an
   error rate at zero, from turning its first blip into an incident).
3. **rules** (in the anomaly's direction: ``up``, ``down`` or ``both``):
   - ``spike``: ``z ≥ spike_z`` on this interval;
   - ``level_shift``: ``z ≥ shift_z`` on this interval and on one of the two before it;
   - ``drift``: a one-sided CUSUM ``S = max(0, S + min(z, clip) − k)`` passes ``h`` (a slow
     drift too small for either rule above accumulates here). ``S`` is capped at ``h + cap``
     while it alarms, so the alarm ends a few intervals after the drift does.

A flagged value is kept out of the history (replaced by its expectation), so an incident does not
teach the detector that it is normal — until it has lasted ``adapt_after`` intervals: then the new
level is accepted as the normal one.

``peer_residuals`` is the comparison of each replica with its peers: a replica's value minus the
median of the others', a series in which whatever the replicas share (the day's load, a model-wide
shift) cancels and one bad replica stands out; it goes through the same detector (no season).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "both"]
Rule = Literal["spike", "level_shift", "drift"]
MAD_TO_SD = 1.4826


@dataclass(frozen=True, slots=True)
class Tuning:
    period: int = 0  # intervals in a season (a day of 15-min intervals: 96); 0: no seasonal removal
    seasons: int = 7  # previous periods the profile looks at
    window: int = 192  # clean residuals in the baseline (a larger one: a steadier MAD, fewer false alarms)
    min_history: int = 24  # residuals needed before anything is judged
    spike_z: float = 6.0
    shift_z: float = 3.5
    trend_window: int = 8  # the drift rule's window of recent z
    trend_z: float = 3.9  # ... whose mean, × √window, passes this
    cusum_k: float = 0.5
    cusum_h: float = 10.0
    cusum_clip: float = 4.0
    cusum_cap: float = 2.0
    adapt_after: int = 288
    floor_abs: float = 0.0
    floor_rel: float = 0.0
    direction: Direction = "up"


@dataclass(frozen=True, slots=True)
class Detection:
    rule: Rule
    z: float  # signed, in the baseline's robust standard deviations
    value: float
    expected: float
    scale: float
    cusum: float

    def evidence(self) -> dict[str, float | str]:
        return {"rule": self.rule, "z": round(self.z, 3), "value": self.value, "expected": self.expected,
                "scale": self.scale, "cusum": round(self.cusum, 3)}


class SeriesDetector:
    """The state of one series: its clean history by interval number, its recent residuals, CUSUMs."""

    def __init__(self, tuning: Tuning) -> None:
        self.tuning = tuning
        self._clean = _History(tuning.seasons * tuning.period)
        self._residuals: deque[float] = deque(maxlen=tuning.window)
        self._recent_z: deque[float] = deque(maxlen=max(3, tuning.trend_window))
        self._up = 0.0
        self._down = 0.0
        self._run = 0  # consecutive flagged intervals
        self._last: int | None = None

    def _profile(self, at: int) -> float | None:
        period = self.tuning.period
        if not period:
            return None
        seen = [v for k in range(1, self.tuning.seasons + 1) if (v := self._clean.get(at - k * period)) is not None]
        return _median(sorted(seen)) if seen else None

    def update(self, at: int, value: float) -> Detection | None:
        """Judge ``value``, the series' value in interval number ``at`` (increasing; gaps allowed)."""
        t = self.tuning
        if self._last is not None and at <= self._last:
            raise ValueError(f"interval {at} is not after {self._last}")
        self._last = at
        profile = self._profile(at)
        if t.period and profile is None:  # a season to remove, not a period of history yet: learn only
            self._clean.put(at, value)
            return None
        residual = value - (profile or 0.0)
        if len(self._residuals) < t.min_history:
            self._accept(at, value, residual)
            return None
        median = _median(sorted(self._residuals))
        level = (profile or 0.0) + median
        scale = max(MAD_TO_SD * _median(sorted(abs(r - median) for r in self._residuals)), t.floor_abs,
                    t.floor_rel * abs(level), 1e-12)
        z = (residual - median) / scale
        self._recent_z.append(z)
        detection = self._judge(z, value, level, scale)
        if detection is None:
            if self._run:  # the incident's end: its accumulation is not the next one's start
                self._up = self._down = 0.0
            self._run = 0
            self._accept(at, value, residual)
            return None
        self._run += 1
        if self._run > t.adapt_after:  # the incident has become the normal: learn it
            self._up = self._down = 0.0
            self._accept(at, value, residual)
        else:
            self._clean.put(at, level)
        return detection

    def _judge(self, z: float, value: float, expected: float, scale: float) -> Detection | None:
        t = self.tuning
        clipped = max(-t.cusum_clip, min(t.cusum_clip, z))
        self._up = max(0.0, self._up + clipped - t.cusum_k) if t.direction != "down" else 0.0
        self._down = max(0.0, self._down - clipped - t.cusum_k) if t.direction != "up" else 0.0
        found: Detection | None = None
        for sign, cusum in ((1.0, self._up), (-1.0, self._down)):
            if (sign > 0 and t.direction == "down") or (sign < 0 and t.direction == "up"):
                continue
            directed = [sign * v for v in self._recent_z]
            trend = directed[-t.trend_window:]
            rule: Rule | None = None
            if directed[-1] >= t.spike_z:
                rule = "spike"
            elif directed[-1] >= t.shift_z and any(v >= t.shift_z for v in directed[-3:-1]):
                rule = "level_shift"
            elif cusum > t.cusum_h or (len(trend) == t.trend_window and directed[-1] > 0
                                       and sum(min(v, t.cusum_clip) for v in trend) / math.sqrt(len(trend)) >= t.trend_z):
                rule = "drift"
            if rule is not None and (found is None or abs(z) > abs(found.z)):
                found = Detection(rule, z, value, expected, scale, cusum)
        ceiling = t.cusum_h + t.cusum_cap
        self._up, self._down = min(self._up, ceiling), min(self._down, ceiling)
        return found

    def _accept(self, at: int, value: float, residual: float) -> None:
        self._clean.put(at, value)
        self._residuals.append(residual)


class _History:
    """The clean values of the last ``size`` intervals, by interval number, in two flat arrays (a
    week of 5-minute intervals: 32 KiB a series, where a dict would take ten times that)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values = array("d", bytes(8 * size))
        self._at = array("q", [-1]) * size

    def put(self, at: int, value: float) -> None:
        if self._size:
            slot = at % self._size
            self._values[slot] = value
            self._at[slot] = at

    def get(self, at: int) -> float | None:
        if not self._size or at < 0:
            return None
        slot = at % self._size
        return self._values[slot] if self._at[slot] == at else None


def _median(ordered: list[float]) -> float:
    """The median of a sorted list (plain Python: on a hundred values, several times numpy's speed)."""
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def peer_residuals(values: Mapping[str, float], *, min_peers: int = 3) -> dict[str, float]:
    """Each replica's value minus the median of its peers' (empty under ``min_peers`` replicas)."""
    if len(values) < min_peers:
        return {}
    return {name: value - _median(sorted(v for n, v in values.items() if n != name)) for name, value in values.items()}
