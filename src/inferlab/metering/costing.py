"""The hardware cost job: attributes each replica's busy time to the stored events, window by window.

The store receives events with their list price; their hardware cost depends on every request
that shared the replica in the same interval, so it is attributed after the fact (``attribution.py``
states the model). The job takes one window at a time (``WINDOW_INTERVALS`` intervals), once the
window's end is ``grace_s`` old: it reads the events whose service spans touch the window, runs the
attribution per replica, keeps the intervals inside the window, and hands the ledger, in one
transaction, the intervals and each event's share — which the store adds to the event's
``hardware_cost`` and to its hourly and daily rollup rows. The window's own row (replica ``''``) is
the job's progress and its lock: two gateways costing the same window conflict on it, and the
loser's transaction is rolled back, so a window is costed once.

The events of a window are those that ended in it or up to ``grace_s`` after it: a request still
running ``grace_s`` after a window ends, or whose event reaches the store later than that (an
outbox that could not ship for longer), is not charged for that window — its busy time there stays
unattributed, and the result depends only on what was stored by then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from inferlab.metering.attribution import EPOCH, to_us
from inferlab.metering.cost import CostTracker
from inferlab.metering.event import UsageEvent

WINDOW_INTERVALS = 60


@dataclass(frozen=True, slots=True)
class CostedInterval:
    replica: str
    start: datetime
    busy_us: int
    quanta: int
    requests: int


@dataclass(frozen=True, slots=True)
class CostPart:
    event: UsageEvent
    quanta: int


class CostLedger(Protocol):
    async def progress(self) -> datetime | None:
        """The start of the last window costed, None before the first."""
        ...

    async def first_event(self) -> datetime | None:
        """The time of the earliest event served by a replica."""
        ...

    async def events_between(self, start: datetime, end: datetime) -> list[UsageEvent]:
        """Events served by a replica whose time (their end) is in ``[start, end)``."""
        ...

    async def record(self, window: datetime, intervals: Sequence[CostedInterval], parts: Sequence[CostPart]) -> bool:
        """In one transaction: the window's row, the intervals, each part added to its event and
        rollups. False (nothing written) when the window was costed already."""
        ...


class CostSink(Protocol):
    """Where a window's costs go besides the store: the analytics sink (ClickHouse), whose rollups
    then carry the hardware cost too. Called before the store records the window, so a sink that
    fails leaves the window to be costed again; so it must be idempotent per window."""

    async def costed(self, window: datetime, parts: Sequence[CostPart]) -> None: ...


def _from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class HardwareCostJob:
    def __init__(self, tracker: CostTracker, ledger: CostLedger, *, grace_s: float, logger: logging.Logger,
                 sink: CostSink | None = None) -> None:
        self._tracker = tracker
        self._ledger = ledger
        self._sink = sink
        self._grace = timedelta(seconds=grace_s)
        self._window = timedelta(microseconds=tracker.interval_us * WINDOW_INTERVALS)
        self._logger = logger

    def _floor(self, moment: datetime) -> datetime:
        window_us = int(self._window / timedelta(microseconds=1))
        us = to_us(moment)
        return _from_us(us - us % window_us)

    async def next_window(self, now: datetime) -> datetime | None:
        done = await self._ledger.progress()
        start = done + self._window if done is not None else None
        if start is None:
            first = await self._ledger.first_event()
            if first is None:
                return None
            start = self._floor(first - self._grace)  # the first requests' spans began before they ended
        return start if start + self._window + self._grace <= now else None

    async def cost_window(self, start: datetime, now: datetime) -> int:
        """Cost ``[start, start + window)``; the number of events that got a share."""
        end = start + self._window
        events = await self._ledger.events_between(start, min(now, end + self._grace))  # spans reaching into it
        start_us, end_us = to_us(start), to_us(end)
        intervals: list[CostedInterval] = []
        quanta: dict[str, int] = {}
        by_replica: dict[str, list[UsageEvent]] = {}
        for event in events:
            if event.replica is not None:
                by_replica.setdefault(event.replica, []).append(event)
        for replica, served in sorted(by_replica.items()):
            for interval_start, cost in sorted(self._tracker.attribute_replica(replica, served).items()):
                if not start_us <= interval_start < end_us:
                    continue
                intervals.append(CostedInterval(replica, _from_us(interval_start), cost.busy_us, cost.quanta,
                                                len(cost.parts)))
                for event_id, part in cost.parts.items():
                    quanta[event_id] = quanta.get(event_id, 0) + part
        by_id = {event.id: event for event in events}
        parts = [CostPart(by_id[event_id], amount) for event_id, amount in sorted(quanta.items()) if amount]
        if self._sink is not None and parts:
            await self._sink.costed(start, parts)  # first: if it fails, the window is not recorded, and retried
        if not await self._ledger.record(start, intervals, parts):
            return 0
        return len(parts)

    async def run_once(self, now: datetime | None = None) -> int:
        """Cost every window that is due; the windows costed."""
        now = now or datetime.now(UTC)
        costed = 0
        while (start := await self.next_window(now)) is not None:
            await self.cost_window(start, now)
            costed += 1
        return costed

    async def run(self) -> None:
        interval_s = self._tracker.interval_us / 1_000_000
        while True:
            try:
                await self.run_once()
            except Exception:  # the store down...: logged, tried again at the next interval
                self._logger.exception("hardware cost attribution failed")
            await asyncio.sleep(interval_s)
