"""Detections become incidents: one per (kind, subject) while it lasts, so one incident is one alert.

An incident opens at a subject's first detection. Each later detection of the same (kind, subject)
joins it (its evidence keeps the strongest and the latest). It closes after ``quiet_intervals``
intervals in a row without a detection — the quiet period: a detector that flickers on and off
inside it does not open, and alert, a second incident. Pure state over plain data; the service
persists and alerts on what ``step`` returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from inferlab.anomaly.detector import Detection


@dataclass(frozen=True, slots=True)
class Subject:
    """What is anomalous: ``scope`` model|replica|tenant, its ``name``, the ``model`` it belongs to."""

    scope: str
    name: str
    model: str = ""

    def __str__(self) -> str:
        return f"{self.scope}={self.name}" if self.scope != "replica" else f"replica={self.model}/{self.name}"


@dataclass(frozen=True, slots=True)
class Key:
    kind: str  # the metric: ttft_ms, e2e_ms, error_rate, token_rate, cost_rate; replica_<metric> for peers
    subject: Subject

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    kind: str
    subject: Subject
    opened_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None
    detections: int
    peak: dict[str, Any]  # the strongest detection's evidence
    latest: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    def as_json(self) -> dict[str, Any]:
        return {"object": "anomaly.incident", "id": self.id, "kind": self.kind, "key": self.key,
                "subject": {"scope": self.subject.scope, "name": self.subject.name, "model": self.subject.model},
                "state": "open" if self.closed_at is None else "closed",
                "opened_at": self.opened_at.isoformat(), "last_seen_at": self.last_seen_at.isoformat(),
                "closed_at": self.closed_at.isoformat() if self.closed_at else None,
                "detections": self.detections, "evidence": {"peak": self.peak, "latest": self.latest}}


@dataclass
class _Open:
    incident: Incident
    quiet: int = 0


@dataclass(frozen=True, slots=True)
class Changes:
    opened: list[Incident] = field(default_factory=list)
    updated: list[Incident] = field(default_factory=list)
    closed: list[Incident] = field(default_factory=list)


class IncidentTracker:
    def __init__(self, quiet_intervals: int) -> None:
        if quiet_intervals < 1:
            raise ValueError("quiet_intervals must be at least 1")
        self._quiet = quiet_intervals
        self._open: dict[Key, _Open] = {}

    @property
    def open(self) -> list[Incident]:
        return [o.incident for o in self._open.values()]

    def adopt(self, incident: Incident) -> None:
        """Carry on an incident opened before (a restart, another gateway): it is not opened again."""
        self._open[Key(incident.kind, incident.subject)] = _Open(incident)

    def step(self, at: datetime, detections: Mapping[Key, Detection]) -> Changes:
        """One interval: ``detections`` are this interval's, keyed by (kind, subject)."""
        changes = Changes()
        for key, detection in detections.items():
            evidence = detection.evidence()
            current = self._open.get(key)
            if current is None:
                incident = Incident(uuid.uuid4().hex, key.kind, key.subject, at, at, None, 1, evidence, evidence)
                self._open[key] = _Open(incident)
                changes.opened.append(incident)
                continue
            peak = current.incident.peak
            stronger = abs(detection.z) > abs(float(peak.get("z", 0.0)))
            current.incident = replace(current.incident, last_seen_at=at, detections=current.incident.detections + 1,
                                       peak=evidence if stronger else peak, latest=evidence)
            current.quiet = 0
            changes.updated.append(current.incident)
        for key in [k for k in self._open if k not in detections]:
            current = self._open[key]
            current.quiet += 1
            if current.quiet >= self._quiet:
                del self._open[key]
                changes.closed.append(replace(current.incident, closed_at=at))
        return changes
