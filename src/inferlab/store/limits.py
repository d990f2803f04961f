"""``LimitStore`` over SQLAlchemy: stored limits and quotas of keys, users and tenants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select

from inferlab.ratelimit.policy import Overrides
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import LimitRow

FIELDS = tuple(f.name for f in fields(Overrides))


def _overrides(row: LimitRow) -> Overrides:
    return Overrides(**{name: getattr(row, name) for name in FIELDS})


class SqlLimitStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def get_many(self, subjects: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Overrides]:
        """The stored limits of each (subject, id) that has any, in one query."""
        wanted = list(subjects)
        if not wanted:
            return {}
        query = select(LimitRow).where(
            or_(*(and_(LimitRow.subject == subject, LimitRow.subject_id == sid) for subject, sid in wanted))
        )
        async with self._db.sessions() as session:
            rows = (await session.scalars(query)).all()
        return {(row.subject, row.subject_id): _overrides(row) for row in rows}

    @bounded
    async def put(self, subject: str, subject_id: str, limits: Overrides) -> None:
        """Replace the stored limits (all None: delete them)."""
        async with self._db.sessions.begin() as session:
            row = await session.get(LimitRow, (subject, subject_id))
            if all(value is None for value in asdict(limits).values()):
                if row is not None:
                    await session.delete(row)
                return
            if row is None:
                row = LimitRow(subject=subject, subject_id=subject_id)
                session.add(row)
            for name in FIELDS:
                setattr(row, name, getattr(limits, name))
            row.updated_at = datetime.now(UTC)
