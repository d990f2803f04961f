"""``AuditStore`` over SQLAlchemy: the admin actions' audit log, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields

from sqlalchemy import select

from inferlab.auth.audit import AuditEvent
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import AuditRow

FIELDS = tuple(f.name for f in fields(AuditEvent))


def _event(row: AuditRow) -> AuditEvent:
    return AuditEvent(**{name: getattr(row, name) for name in FIELDS})


class SqlAuditStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def add(self, event: AuditEvent) -> None:
        async with self._db.sessions.begin() as session:
            session.add(AuditRow(**asdict(event)))

    @bounded
    async def list(self, *, tenant_id: str | None, limit: int, after: str | None = None, action: str | None = None,
                   target_id: str | None = None) -> Sequence[AuditEvent]:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(AuditRow.tenant_id == tenant_id)
        if after is not None:
            query = query.where(AuditRow.id < after)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if target_id is not None:
            query = query.where(AuditRow.target_id == target_id)
        async with self._db.sessions() as session:
            return [_event(row) for row in (await session.scalars(query)).all()]
