"""``AnomalyDetector``: the background service (``run``, on the Lifecycle) — every interval it
samples the usage ledger, judges every series, turns detections into incidents, persists them,
alerts by webhook and exports Prometheus metrics.

Incidents are shared through the store: an incident is opened by inserting it, at most one open
per key (kind:subject) — so gateways that all run the detector open it once between them, and only
the one whose insert won sends the alert. The others adopt it (it is open; they do not alert).
Closing is the same: the gateway whose update closed the row sends the "resolved" alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from inferlab.anomaly.detector import Detection, SeriesDetector, Tuning, peer_residuals
from inferlab.anomaly.incidents import Changes, Incident, IncidentTracker, Key, Subject
from inferlab.anomaly.sampling import UsageWindows, peer_values, sample, tuning_for
from inferlab.config.anomaly import AnomalySettings


class IncidentStore(Protocol):
    async def open(self, incident: Incident) -> Incident | None: ...
    async def touch(self, incident: Incident) -> None: ...
    async def close(self, incident: Incident) -> bool: ...
    async def listing(self, *, open_only: bool = False, recent: int = 100) -> list[Incident]: ...


class Alerter(Protocol):
    async def send(self, delivery: str, payload: dict[str, Any]) -> bool: ...


class AnomalyObserver(Protocol):
    def detection(self, kind: str, scope: str, rule: str) -> None: ...
    def open_incidents(self, counts: dict[tuple[str, str], int]) -> None: ...
    def incident_opened(self, kind: str, scope: str) -> None: ...


def tuning_of(settings: AnomalySettings) -> Tuning:
    period = {"daily": 86400, "weekly": 7 * 86400, "none": 0}[settings.season]
    return Tuning(period=round(period / settings.interval_s), seasons=settings.seasons, window=settings.window,
                  min_history=settings.min_history, spike_z=settings.spike_z, shift_z=settings.shift_z,
                  trend_window=settings.trend_window, trend_z=settings.drift_z, cusum_h=settings.cusum_h)


class AnomalyDetector:
    def __init__(self, windows: UsageWindows, store: IncidentStore, settings: AnomalySettings,
                 logger: logging.Logger, *, alerter: Alerter | None = None, observer: AnomalyObserver | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._windows = windows
        self._store = store
        self._settings = settings
        self._logger = logger
        self._alerter = alerter
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        self._tuning = tuning_of(settings)
        self._series: dict[Key, SeriesDetector] = {}
        self._tracker = IncidentTracker(settings.quiet_intervals)
        self._last: int | None = None

    @property
    def settings(self) -> AnomalySettings:
        return self._settings

    @property
    def last_judged(self) -> int | None:
        """The number of the last interval judged (``interval_of`` its end)."""
        return self._last

    def interval_of(self, at: datetime) -> int:
        """The number of the interval that ends at ``at`` (``at`` on a boundary)."""
        return int(at.timestamp() // self._settings.interval_s)

    def _detector(self, key: Key, *, peer: bool) -> SeriesDetector:
        detector = self._series.get(key)
        if detector is None:
            kind = key.kind.removeprefix("replica_")
            detector = self._series[key] = SeriesDetector(tuning_for(kind, self._tuning, peer=peer))
        return detector

    async def judge(self, end: datetime) -> dict[Key, Detection]:
        """Sample the interval that ends at ``end`` and judge every series on it (no incidents)."""
        seconds = self._settings.interval_s
        number = self.interval_of(end)
        if self._last is not None and number <= self._last:
            return {}
        self._last = number
        rows = await self._windows.window(end - timedelta(seconds=seconds), end)
        values: dict[Key, tuple[float, bool]] = {Key(kind, subject): (value, False)
                                                for (kind, subject), value in sample(rows, seconds,
                                                                                     self._settings.min_requests).items()}
        for key in self._series:  # a rate series that has gone quiet is 0, not missing
            if key.kind in ("token_rate", "cost_rate") and key not in values:
                values[key] = (0.0, False)
        for (model, kind), replicas in peer_values(rows, seconds, self._settings.min_requests).items():
            for replica, residual in peer_residuals(replicas, min_peers=self._settings.min_peers).items():
                values[Key(f"replica_{kind}", Subject("replica", replica, model))] = (residual, True)
        found = {}
        for key, (value, peer) in values.items():
            detection = self._detector(key, peer=peer).update(number, value)
            if detection is not None:
                found[key] = detection
                if self._observer is not None:
                    self._observer.detection(key.kind, key.subject.scope, detection.rule)
        return found

    async def backfill(self, end: datetime) -> int:
        """Judge the intervals of the ``backfill_s`` that end at ``end`` (history after a restart),
        silently: no incident comes of them; the open incidents in the store are carried on."""
        intervals = int(self._settings.backfill_s // self._settings.interval_s)
        for i in range(intervals - 1, -1, -1):
            await self.judge(end - timedelta(seconds=i * self._settings.interval_s))
        for incident in await self._store.listing(open_only=True):
            self._tracker.adopt(incident)
        return intervals

    async def tick(self, end: datetime) -> Changes:
        """One interval: judge, then open, update and close incidents (persisted, alerted)."""
        changes = self._tracker.step(end, await self.judge(end))
        for incident in changes.opened:
            existing = await self._store.open(incident)
            if existing is not None:  # another gateway opened it first: carry its incident on, silently
                self._tracker.adopt(existing)
                continue
            self._logger.warning("anomaly incident opened", extra={"incident": incident.key, "id": incident.id,
                                                                   "evidence": incident.peak})
            if self._observer is not None:
                self._observer.incident_opened(incident.kind, incident.subject.scope)
            await self._alert("opened", incident)
        for incident in changes.updated:
            await self._store.touch(incident)
        for incident in changes.closed:
            if await self._store.close(incident):
                self._logger.info("anomaly incident closed", extra={"incident": incident.key, "id": incident.id})
                await self._alert("closed", incident)
        if self._observer is not None:
            counts: dict[tuple[str, str], int] = {}
            for incident in self._tracker.open:
                group = (incident.kind, incident.subject.scope)
                counts[group] = counts.get(group, 0) + 1
            self._observer.open_incidents(counts)
        return changes

    async def _alert(self, event: str, incident: Incident) -> None:
        if self._alerter is None:
            return
        payload = {"object": "anomaly.alert", "event": event, "incident": incident.as_json()}
        if not await self._alerter.send(f"{incident.id}:{event}", payload):
            self._logger.warning("anomaly alert not delivered", extra={"incident": incident.key, "event": event})

    async def incidents(self, *, open_only: bool = False) -> list[Incident]:
        return await self._store.listing(open_only=open_only, recent=self._settings.recent)

    def _boundary(self) -> datetime:
        """The end of the last interval that can be read now (``lag_s`` after it ended)."""
        step = self._settings.interval_s
        return datetime.fromtimestamp(((self._clock() - self._settings.lag_s) // step) * step, UTC)

    async def run(self) -> None:
        try:
            await self.backfill(self._boundary())
        except Exception:  # history is a nicety: without it the series warm up live
            self._logger.exception("anomaly backfill failed")
        while True:
            next_end = self._boundary() + timedelta(seconds=self._settings.interval_s)
            await self._sleep(max(0.0, next_end.timestamp() + self._settings.lag_s - self._clock()))
            try:
                await self.tick(next_end)
            except Exception:  # a failed interval (store down...) is logged; the service carries on
                self._logger.exception("anomaly detection failed")
