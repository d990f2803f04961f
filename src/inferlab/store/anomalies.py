"""The anomaly detector's store side: ``SqlUsageWindows`` (the ledger's sums over an interval)
and ``SqlIncidentStore`` (incidents, at most one open per key across every gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from inferlab.anomaly.incidents import Incident, Subject
from inferlab.anomaly.sampling import WindowRow
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import AnomalyIncidentRow, UsageEventRow


class SqlUsageWindows:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def window(self, start: datetime, end: datetime) -> list[WindowRow]:
        e = UsageEventRow
        query = (select(e.model, e.replica, e.tenant, func.count(),
                        func.sum(case((e.status == "error", 1), else_=0)), func.sum(e.ttft_ms), func.count(e.ttft_ms),
                        func.sum(e.duration_ms), func.sum(e.prompt_tokens + e.completion_tokens), func.sum(e.price))
                 .where(e.time >= start, e.time < end).group_by(e.model, e.replica, e.tenant))
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [WindowRow(str(r[0]), str(r[1] or ""), str(r[2]), int(r[3]), int(r[4] or 0), float(r[5] or 0), int(r[6] or 0),
                          float(r[7] or 0), int(r[8] or 0), float(r[9] or 0)) for r in rows]


def _incident(row: AnomalyIncidentRow) -> Incident:
    return Incident(row.id, row.kind, Subject(row.scope, row.subject, row.model), row.opened_at, row.last_seen_at,
                    row.closed_at, row.detections, dict(row.peak), dict(row.latest))


class SqlIncidentStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def open(self, incident: Incident) -> Incident | None:
        """Insert ``incident``: None when this caller opened it (it alerts), else the open one of its key."""
        try:
            async with self._db.sessions.begin() as session:
                session.add(AnomalyIncidentRow(
                    id=incident.id, key=incident.key, kind=incident.kind, scope=incident.subject.scope,
                    subject=incident.subject.name, model=incident.subject.model, opened_at=incident.opened_at,
                    last_seen_at=incident.last_seen_at, closed_at=None, detections=incident.detections,
                    peak=incident.peak, latest=incident.latest))
            return None
        except IntegrityError:
            pass
        async with self._db.sessions() as session:
            row = await session.scalar(select(AnomalyIncidentRow).where(
                AnomalyIncidentRow.key == incident.key, AnomalyIncidentRow.closed_at.is_(None)))
            return _incident(row) if row is not None else incident

    @bounded
    async def touch(self, incident: Incident) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(update(AnomalyIncidentRow).where(AnomalyIncidentRow.id == incident.id).values(
                last_seen_at=incident.last_seen_at, detections=incident.detections, peak=incident.peak,
                latest=incident.latest))

    @bounded
    async def close(self, incident: Incident) -> bool:
        """True when this caller closed it (another gateway may have)."""
        async with self._db.sessions.begin() as session:
            done = await session.execute(update(AnomalyIncidentRow).where(
                AnomalyIncidentRow.id == incident.id, AnomalyIncidentRow.closed_at.is_(None)).values(
                closed_at=incident.closed_at, last_seen_at=incident.last_seen_at, detections=incident.detections,
                peak=incident.peak, latest=incident.latest))
            return bool(getattr(done, "rowcount", 0) == 1)

    @bounded
    async def listing(self, *, open_only: bool = False, recent: int = 100) -> list[Incident]:
        """The open incidents, then (unless ``open_only``) the ``recent`` last closed, newest first."""
        query: Any = select(AnomalyIncidentRow)
        async with self._db.sessions() as session:
            opened = list(await session.scalars(query.where(AnomalyIncidentRow.closed_at.is_(None))
                                                .order_by(AnomalyIncidentRow.opened_at.desc())))
            closed = [] if open_only else list(await session.scalars(
                query.where(AnomalyIncidentRow.closed_at.is_not(None))
                .order_by(AnomalyIncidentRow.closed_at.desc()).limit(recent)))
        return [_incident(r) for r in opened + closed]
