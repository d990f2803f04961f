"""Scheduled bounds: the (min, max) replicas in force at a time, from cron-like weekly windows (UTC).

The last window that covers the time wins each bound it sets; outside every window the pool's own
``min_replicas``/``max_replicas`` apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start_min: int  # minutes after midnight, inclusive
    end_min: int  # exclusive; <= start_min: crosses midnight (into the next day)
    min_replicas: int | None = None
    max_replicas: int | None = None

    def covers(self, at: datetime) -> bool:
        minute = at.hour * 60 + at.minute
        day = at.weekday()
        if self.start_min < self.end_min:
            return day in self.days and self.start_min <= minute < self.end_min
        if minute >= self.start_min:  # the evening part, on a listed day
            return day in self.days
        return (day - 1) % 7 in self.days and minute < self.end_min  # the morning after a listed day


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def window(days: Sequence[str], start: str, end: str, min_replicas: int | None = None,
           max_replicas: int | None = None) -> Window:
    return Window(frozenset(DAY_NAMES.index(day) for day in days), minutes(start), minutes(end),
                  min_replicas, max_replicas)


def bounds_at(at: datetime, windows: Sequence[Window], default: tuple[int, int]) -> tuple[int, int]:
    """(min, max) in force at ``at`` (UTC); a max below the min raises the max to it."""
    low, high = default
    for candidate in windows:
        if candidate.covers(at):
            low = candidate.min_replicas if candidate.min_replicas is not None else low
            high = candidate.max_replicas if candidate.max_replicas is not None else high
    return low, max(low, high)
