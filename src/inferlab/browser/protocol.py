"""The browser package's seams: remembering the reports already taken, and pacing each key's
reports. In-process implementations are in ``memory.py``; gateway replicas behind a load balancer
each keep their own (the ledger stays exact regardless: the store skips an event id it has)."""

from __future__ import annotations

from typing import Protocol


class SeenReports(Protocol):
    def first_time(self, event_id: str, now: float) -> bool:
        """True the first time ``event_id`` is offered (then remembered), False for a repeat."""
        ...


class ReportPacer(Protocol):
    def take(self, subject: str, now: float) -> float:
        """0 when ``subject`` may send one more report now (it is counted); else the seconds to wait."""
        ...
