"""A labelled set of synthetic series with injected incidents, to measure the detector against.

Every series is a level, a daily season (a sinusoid and a bump of its own amplitude and phase, up
to 8 noise standard deviations: a detector that does not remove it drowns in false alarms), and
Gaussian noise. After two days of warm-up, incidents are injected, apart from one another by more
than the quiet period, each labelled with where it starts and ends:

- ``spike``: one interval, +8…15 σ;
- ``level_shift``: +5…10 σ for 12–40 intervals;
- ``drift``: a ramp of 0.15…0.4 σ per interval for 30–60 intervals; its ``detectable`` interval
  is where the ramp has reached 3 σ (a drift has no sharp onset; latency is counted from there —
  the level a shift must have to be told from noise on two intervals out of three);
- ``bad_replica``: in a group of 3–6 replicas sharing the season and the load, one replica +5…10 σ
  for 12–40 intervals.

A series of kind ``down`` (a token rate that collapses) has its incidents negated. Seeded: the same
seed gives the same set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

IncidentType = Literal["spike", "level_shift", "drift", "bad_replica"]
PERIOD = 96  # 15-minute intervals in a day
WARMUP = 2 * PERIOD
DRIFT_DETECTABLE_SIGMAS = 3.0  # a drift counts as begun, for latency, once it has moved the series this far


@dataclass(frozen=True, slots=True)
class Label:
    type: IncidentType
    start: int
    end: int  # last interval of the incident, included
    detectable: int  # the interval from which detection latency is counted


@dataclass
class Series:
    name: str
    values: list[float]
    direction: Literal["up", "down"]
    labels: list[Label] = field(default_factory=list)
    sigma: float = 1.0


@dataclass
class PeerGroup:
    """Replicas of one model: ``replicas[bad]`` carries the labelled incidents."""

    name: str
    replicas: list[list[float]]
    bad: int
    labels: list[Label]
    sigma: float = 1.0


def _season(rng: np.random.Generator, length: int, sigma: float) -> np.ndarray:
    t = np.arange(length)
    amplitude = rng.uniform(2, 8) * sigma
    phase = rng.uniform(0, 2 * math.pi)
    bump_at, bump = rng.uniform(0, PERIOD), rng.uniform(0, 4) * sigma
    slot = t % PERIOD
    return amplitude * np.sin(2 * math.pi * t / PERIOD + phase) + bump * np.exp(-0.5 * ((slot - bump_at) / 6) ** 2)


def _incident(rng: np.random.Generator, kind: IncidentType, start: int, sigma: float) -> tuple[np.ndarray, Label]:
    if kind == "spike":
        return np.array([rng.uniform(8, 15) * sigma]), Label(kind, start, start, start)
    if kind == "drift":
        duration = int(rng.integers(30, 61))
        slope = rng.uniform(0.15, 0.4) * sigma
        ramp = slope * np.arange(1, duration + 1)
        detectable = start + math.ceil(DRIFT_DETECTABLE_SIGMAS * sigma / slope) - 1
        return ramp, Label(kind, start, start + duration - 1, detectable)
    duration = int(rng.integers(12, 41))
    shift = np.full(duration, rng.uniform(5, 10) * sigma)
    return shift, Label(kind, start, start + duration - 1, start)


def _schedule(rng: np.random.Generator, length: int, kinds: list[IncidentType], gap: int) -> list[tuple[IncidentType, int]]:
    """Incidents at random places after the warm-up, at least ``gap`` intervals apart (end to start)."""
    placed: list[tuple[IncidentType, int]] = []
    at = WARMUP + int(rng.integers(10, 60))
    for kind in kinds:
        if at + 70 >= length:
            break
        placed.append((kind, at))
        at += 70 + gap + int(rng.integers(0, 80))
    return placed


def labelled_series(seed: int, count: int, *, length: int = 7 * PERIOD, gap: int = 30) -> list[Series]:
    """``count`` series, each with several incidents of the three single-series types."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(count):
        sigma = float(rng.uniform(0.5, 20))
        level = sigma * float(rng.uniform(20, 200))
        values = level + _season(rng, length, sigma) + rng.normal(0, sigma, length)
        direction: Literal["up", "down"] = "down" if i % 4 == 3 else "up"
        sign = -1.0 if direction == "down" else 1.0
        kinds: list[IncidentType] = list(rng.choice(["spike", "level_shift", "drift"], size=6))
        labels = []
        for kind, start in _schedule(rng, length, kinds, gap):
            effect, label = _incident(rng, kind, start, sigma)
            values[start:start + len(effect)] += sign * effect
            labels.append(label)
        found.append(Series(f"series-{seed}-{i}", [float(v) for v in values], direction, labels, sigma))
    return found


def labelled_groups(seed: int, count: int, *, length: int = 7 * PERIOD, gap: int = 30) -> list[PeerGroup]:
    """``count`` replica groups; one replica of each goes bad, several times."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(count):
        sigma = float(rng.uniform(0.5, 20))
        level = sigma * float(rng.uniform(20, 200))
        shared = level + _season(rng, length, sigma)
        size = int(rng.integers(3, 7))
        replicas = [shared + rng.normal(0, sigma, length) for _ in range(size)]
        bad = int(rng.integers(0, size))
        labels = []
        kinds: list[IncidentType] = ["bad_replica"] * 6
        for kind, start in _schedule(rng, length, kinds, gap):
            effect, label = _incident(rng, kind, start, sigma)
            replicas[bad][start:start + len(effect)] += effect
            labels.append(label)
        found.append(PeerGroup(f"group-{seed}-{i}", [[float(v) for v in r] for r in replicas], bad, labels, sigma))
    return found
