"""The retry budget: retries stay a bounded fraction of traffic, so failover cannot snowball.

Like Finagle's and Envoy's budgets: every request deposits ``ratio`` of a retry, a floor of
``min_per_s`` retries per second is always allowed, and the balance is capped so a quiet period
cannot bank a storm. Pure state over an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3  # per request, the first attempt included
    # explicit bounds; None: derived per request from the model's expected speed (``timeouts.py``)
    attempt_timeout_s: float | None = None  # non-streamed attempt: the whole answer
    first_byte_timeout_s: float | None = None  # streamed attempt: until the first chunk
    stream_idle_timeout_s: float | None = None  # streamed attempt: between two chunks


class RetryBudget:
    def __init__(
        self,
        ratio: float = 0.2,
        min_per_s: float = 5.0,
        cap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_s < 0:
            raise ValueError("retry budget ratio and min_per_s must not be negative")
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.cap = cap if cap is not None else max(1.0, min_per_s + 100 * ratio)
        self._clock = clock
        self._balance = max(1.0, min_per_s)
        self._floor_at = clock()
        self.spent = 0
        self.refused = 0

    def deposit(self) -> None:
        """One request arrived."""
        self._balance = min(self.cap, self._balance + self.ratio)

    def try_spend(self) -> bool:
        """May one retry happen now? Spends it when so."""
        now = self._clock()
        elapsed = now - self._floor_at
        self._floor_at = now
        self._balance = min(self.cap, self._balance + elapsed * self.min_per_s)
        if self._balance >= 1.0:
            self._balance -= 1.0
            self.spent += 1
            return True
        self.refused += 1
        return False

    def snapshot(self) -> dict[str, Any]:
        return {"balance": round(self._balance, 3), "ratio": self.ratio, "min_per_s": self.min_per_s,
                "spent": self.spent, "refused": self.refused}
