"""A circuit breaker per replica: passive outlier detection with exponential ejection.

    CLOSED ──N consecutive failures──▶ OPEN (ejected for base·2^k, capped)
       ▲                                  │ ejection over (and, when probe-gated,
       │ trial succeeds                   ▼ an active health probe succeeded)
       └──────────────────────────── HALF_OPEN ── trial fails ──▶ OPEN (k+1)

In HALF_OPEN one request at a time is let through as the trial. Failures are what the replica
caused: 5xx, timeouts, connection errors — never an engine's 4xx verdict on the request itself.
Pure state over an injected clock (``now`` in monotonic seconds): no I/O, no tasks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 3
    ejection_base_s: float = 1.0
    ejection_max_s: float = 30.0
    probe_gated: bool = True  # leave OPEN only after an active probe succeeded


class CircuitBreaker:
    __slots__ = (
        "_probe_ok",
        "consecutive_failures",
        "ejections",
        "open_until",
        "opened_total",
        "policy",
        "state",
        "trial_in_flight",
    )

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.ejections = 0  # consecutive ejections without a full recovery: the backoff exponent
        self.open_until = 0.0
        self.trial_in_flight = False
        self.opened_total = 0
        self._probe_ok = False

    def allows(self, now: float) -> bool:
        """May a request be sent now? (Does not reserve the trial: ``on_dispatch`` does.)"""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            if now < self.open_until or (self.policy.probe_gated and not self._probe_ok):
                return False
            self.state = BreakerState.HALF_OPEN
        return not self.trial_in_flight

    def on_dispatch(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self.trial_in_flight = True

    def on_success(self) -> None:
        """A request succeeded. Only a half-open trial closes the breaker: a late success of a
        request sent before the ejection does not cut the ejection short."""
        self.consecutive_failures = 0
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.CLOSED
            self.trial_in_flight = False
            self.ejections = 0

    def on_failure(self, now: float) -> bool:
        """Count a failure; True when it (re)opened the breaker."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.policy.failure_threshold
        ):
            self._open(now)
            return True
        return False

    def on_neutral(self) -> None:
        """The request ended without telling anything about the replica (client left, 4xx)."""
        self.trial_in_flight = False

    def on_probe(self, healthy: bool, now: float) -> None:
        """An active health probe's verdict; it gates OPEN → HALF_OPEN and can re-eject early."""
        if self.state is not BreakerState.OPEN:
            return
        if healthy:
            self._probe_ok = True
        elif now >= self.open_until:
            self._open(now)  # still down when its ejection ended: eject again, for longer

    def probe_due(self, now: float) -> bool:
        return self.state is BreakerState.OPEN and now >= self.open_until and not self._probe_ok

    def retry_in(self, now: float) -> float:
        """Seconds until this replica may be tried again (0 when it may be tried now)."""
        return max(0.0, self.open_until - now) if self.state is BreakerState.OPEN else 0.0

    def _open(self, now: float) -> None:
        policy = self.policy
        duration = min(policy.ejection_base_s * (2 ** self.ejections), policy.ejection_max_s)
        self.ejections += 1
        self.opened_total += 1
        self.state = BreakerState.OPEN
        self.open_until = now + duration
        self.trial_in_flight = False
        self._probe_ok = False
        self.consecutive_failures = 0
