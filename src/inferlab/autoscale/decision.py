"""The scaling decision, KPA-style (Knative's pod autoscaler), as a small class over plain data.

Every tick the pool's combined load (requests in the system: in flight plus queued, see
``signals.py``) is recorded; two windows average it:

- the *stable* window (e.g. 60 s) decides in steady state;
- the *panic* window (e.g. 6 s) decides when load jumps: once the panic window needs at least
  ``panic_threshold`` × the current replicas, the pool is *panicking* for one stable window and
  never scales down meanwhile (a burst is served now, not a minute later).

desired = ceil((load + headroom·√load) · pressure / target): ``target`` is the load one replica
takes at its SLO, the square-root headroom absorbs the Poisson noise of the arrivals (the
"square-root staffing" rule), and ``pressure`` ≥ 1 when the engines say the replicas are slower
than planned (KV cache near full, TTFT over the tier's SLO). A change within ``tolerance`` of
the current count is not made — up past ``current·(1 + tolerance)``, down below
``(current − 1)·(1 − tolerance)``: a dead band on each side, so noise does not flap; a scale-down takes the highest desired
count of the last ``scale_down_delay_s`` (stabilisation); the result is clamped to the bounds
in force (``min``/``max``, and the scheduled windows'). A pool whose minimum is 0 goes to zero
after ``idle_s`` without a request, and back to one at once when a request arrives.

Nothing here does I/O or reads a clock: ``decide(sample)`` takes the time in the sample, so the
same code runs in the gateway, in the simulated traces and in the benchmark.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["up", "down", "hold"]


@dataclass(frozen=True, slots=True)
class ScalePolicy:
    target: float = 4.0  # load (requests in the system) one replica takes at its SLO
    min_replicas: int = 1
    max_replicas: int = 4
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0  # panic when the panic window needs this many times the current replicas
    tolerance: float = 0.1  # a change smaller than this fraction of the current count is not made
    scale_down_delay_s: float = 15.0  # a scale-down takes the highest desired count of this long
    headroom: float = 0.75  # × √load of spare room (0: none)
    idle_s: float = 300.0  # with min_replicas 0: scale to zero after this long without a request

    def __post_init__(self) -> None:
        if self.target <= 0:
            raise ValueError("target must be positive")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 0 <= min_replicas <= max_replicas")
        if not 0 < self.panic_window_s <= self.stable_window_s:
            raise ValueError("need 0 < panic_window_s <= stable_window_s")


@dataclass(frozen=True, slots=True)
class Sample:
    """What the pool looked like at ``at`` (seconds, any monotonic clock)."""

    at: float
    load: float  # requests in the system: in flight + queued (the combined signal, ``signals.py``)
    current: int  # replicas serving or starting (what the actuator was last told, or found)
    pressure: float = 1.0  # ≥ 1: the engines are slower than planned (KV use, TTFT over the SLO)
    last_request_at: float | None = None  # when a request last arrived (None: never)
    bounds: tuple[int, int] | None = None  # (min, max) in force now when a schedule overrides the policy's
    signals: dict[str, float] = field(default_factory=dict)  # the raw inputs, for the decision log


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    current: int
    desired: int
    direction: Direction
    reason: str
    stable_load: float
    panic_load: float
    panicking: bool
    inputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "current": self.current, "desired": self.desired, "direction": self.direction,
                "reason": self.reason, "stable_load": round(self.stable_load, 3),
                "panic_load": round(self.panic_load, 3), "panicking": self.panicking, "inputs": self.inputs}


class SlidingMean:
    """The mean of the values added over the last ``span_s`` (O(1) amortised per add)."""

    __slots__ = ("_points", "_sum", "span_s")

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._points: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def add(self, at: float, value: float) -> None:
        self._points.append((at, value))
        self._sum += value
        horizon = at - self.span_s
        points = self._points
        while points and points[0][0] <= horizon:
            self._sum -= points.popleft()[1]

    def mean(self) -> float:
        return max(0.0, self._sum / len(self._points)) if self._points else 0.0


class SlidingMax:
    """The highest value added over the last ``span_s`` (a monotonic deque)."""

    __slots__ = ("_points", "span_s")

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._points: deque[tuple[float, int]] = deque()

    def add(self, at: float, value: int) -> int:
        points = self._points
        while points and points[-1][1] <= value:
            points.pop()
        points.append((at, value))
        horizon = at - self.span_s
        while points[0][0] <= horizon:
            points.popleft()
        return points[0][1]


def replicas_for(load: float, policy: ScalePolicy, pressure: float = 1.0) -> float:
    """Replicas (fractional) ``load`` needs: with its √load headroom, at ``pressure``."""
    if load <= 0:
        return 0.0
    return (load + policy.headroom * math.sqrt(load)) * pressure / policy.target


class ScaleDecider:
    """One pool's decision state: its windows, panic mode and scale-down stabilisation."""

    def __init__(self, policy: ScalePolicy) -> None:
        self.policy = policy
        self._stable = SlidingMean(policy.stable_window_s)
        self._panic = SlidingMean(policy.panic_window_s)
        self._recent = SlidingMax(policy.scale_down_delay_s)
        self._panic_until = -math.inf
        self._started = False

    def decide(self, sample: Sample) -> Decision:
        policy, now, current = self.policy, sample.at, sample.current
        if not self._started:  # no scale-down before one stabilisation delay has been watched
            self._started = True
            self._recent.add(now, current)
        self._stable.add(now, sample.load)
        self._panic.add(now, sample.load)
        stable, panic = self._stable.mean(), self._panic.mean()
        want_stable = replicas_for(stable, policy, sample.pressure)
        want_panic = replicas_for(panic, policy, sample.pressure)
        if current > 0 and want_panic >= policy.panic_threshold * current:
            self._panic_until = now + policy.stable_window_s
        panicking = now < self._panic_until
        raw = max(want_panic, want_stable) if panicking else want_stable
        desired = math.ceil(raw - 1e-9)
        reason = "panic" if panicking else "stable"
        tolerance = policy.tolerance
        if current > 0 and ((current < desired and raw <= current * (1 + tolerance))
                            or (desired < current and raw > (current - 1) * (1 - tolerance))):
            desired, reason = current, "within tolerance"  # a band on each side: noise does not flap
        if panicking:
            desired = max(desired, current)  # a burst: never scale down while panicking
        low, high = sample.bounds or (policy.min_replicas, policy.max_replicas)
        recent = self._recent.add(now, desired)
        if desired < current and recent > desired:
            desired, reason = min(recent, current), "stabilising"
        idle_for = math.inf if sample.last_request_at is None else now - sample.last_request_at
        if desired == 0 and current > 0 and sample.load <= 0 and idle_for < policy.idle_s:
            desired, reason = 1, "not idle long enough"
        if sample.load > 0 and desired == 0:
            desired, reason = 1, "activation"  # a request is waiting for a pool at zero
        if desired < low:
            desired, reason = low, "minimum"
        elif desired > high:
            desired, reason = high, "maximum"
        if desired == 0 and current > 0:
            reason = "idle"
        direction: Direction = "up" if desired > current else "down" if desired < current else "hold"
        return Decision(now, current, desired, direction, reason, stable, panic, panicking,
                        {"load": round(sample.load, 3), "pressure": round(sample.pressure, 3),
                         "idle_s": None if idle_for == math.inf else round(idle_for, 3),
                         "bounds": [low, high], **sample.signals})
