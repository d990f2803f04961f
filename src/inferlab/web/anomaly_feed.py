"""The anomaly detector's incidents as the anomalies page lists them (``AnomalyFeed``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferlab.anomaly.service import AnomalyDetector


class IncidentFeed:
    def __init__(self, detector: AnomalyDetector) -> None:
        self._detector = detector

    async def recent_anomalies(self, limit: int, tenant: str | None = None) -> Sequence[Mapping[str, Any]]:
        found = []
        for incident in await self._detector.incidents():
            subject = incident.subject
            owner = subject.name if subject.scope == "tenant" else ""
            if tenant is not None and owner != tenant:
                continue
            found.append({"at": incident.opened_at.strftime("%Y-%m-%d %H:%M:%S"), "tenant": owner,
                          "kind": incident.kind, "severity": "open" if incident.closed_at is None else "closed",
                          "detail": f"{subject} · {incident.detections} detections"})
        return found[:limit]
