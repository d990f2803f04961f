"""In-process ``SeenReports`` (a bounded, insertion-ordered set) and ``ReportPacer`` (a token
bucket per subject, the idle ones forgotten)."""

from __future__ import annotations

from collections import OrderedDict


class MemorySeenReports:
    """The last ``capacity`` report ids; an older one repeated is answered as new, and the store's
    idempotent insert (same id and time) still keeps it out of the ledger."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str, now: float) -> bool:
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def forget(self, event_id: str) -> None:
        """The report was not kept after all (the outbox refused it): a retry is a first time again."""
        self._seen.pop(event_id, None)


class MemoryReportPacer:
    """``per_minute`` reports a subject, ``burst`` at once (a token bucket)."""

    def __init__(self, per_minute: float, burst: int, *, max_subjects: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_subjects = max_subjects
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # subject → (tokens, at)

    def take(self, subject: str, now: float) -> float:
        tokens, at = self._buckets.pop(subject, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens >= 1.0:
            self._buckets[subject] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[subject] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        if len(self._buckets) > self._max_subjects:
            self._buckets.popitem(last=False)  # the least recently seen: it has long refilled
        return wait
