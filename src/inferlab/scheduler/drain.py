"""The measured drain rate of a pool's queue: how many waiters a saturated pool serves per second.

A saturated pool frees a slot every (time a request holds a slot) / (slots) on average, so the
rate is the pool's routable slots over the mean hold time, an EWMA of the holds of requests that
ended. It answers "how long until a request with n waiters ahead of it starts" — the deadline
check at the door and every 503's ``Retry-After`` — without waiting for the queue itself to move,
and it does not drift low while the pool is idle (a count of recent dispatches would).
"""

from __future__ import annotations

RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 60.0


class DrainRate:
    __slots__ = ("_alpha", "_min_samples", "hold_s", "samples")

    def __init__(self, alpha: float = 0.1, min_samples: int = 3) -> None:
        self._alpha = alpha
        self._min_samples = min_samples
        self.hold_s: float | None = None
        self.samples = 0

    def held(self, seconds: float) -> None:
        """A request held a slot this long."""
        seconds = max(seconds, 1e-4)
        self.samples += 1
        self.hold_s = seconds if self.hold_s is None else self.hold_s + self._alpha * (seconds - self.hold_s)

    def per_second(self, slots: int) -> float | None:
        """Waiters served per second while every slot is busy; None until measured."""
        if self.hold_s is None or self.samples < self._min_samples or slots <= 0:
            return None
        return slots / self.hold_s

    def wait_s(self, ahead: float, slots: int) -> float | None:
        """Seconds until a request with ``ahead`` dispatches before it starts; None until measured."""
        rate = self.per_second(slots)
        return None if rate is None else (ahead + 1) / rate


def retry_after(wait_s: float | None, fallback_s: float) -> float:
    """A ``Retry-After`` from an estimated wait (or the fallback), bounded to [1, 60] s."""
    value = wait_s if wait_s is not None else fallback_s
    return min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, value))
