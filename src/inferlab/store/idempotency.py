"""``IdempotencyStore`` over SQLAlchemy: one row per (scope, key); the primary key makes a claim
atomic across gateway replicas, a conditional update takes a dead row over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from inferlab.idempotency.protocol import Begun, Claimed, InUse, Record, StoredResponse, decide
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import IdempotencyRow


def _record(row: IdempotencyRow) -> Record:
    response = None
    if row.status is not None:
        response = StoredResponse(row.status, {str(k): str(v) for k, v in (row.headers or {}).items()},
                                  row.body or b"")
    return Record(row.fingerprint, row.locked_at, row.expires_at, response)


class SqlIdempotencyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def begin(self, scope: str, key: str, fingerprint: str, now: datetime, expires_at: datetime,
                    stale_before: datetime) -> Begun:
        try:
            async with self._db.sessions.begin() as session:
                session.add(IdempotencyRow(scope=scope, key=key, fingerprint=fingerprint, locked_at=now,
                                           expires_at=expires_at))
            return Claimed(now)
        except IntegrityError:
            pass
        async with self._db.sessions() as session:
            row = await session.get(IdempotencyRow, (scope, key))
        if row is None:  # released meanwhile: the caller may retry, as after a 409
            return InUse()
        outcome = decide(_record(row), fingerprint, now, stale_before)
        if outcome is not None:
            return outcome
        async with self._db.sessions.begin() as session:  # dead: taken over unless someone else was quicker
            taken = await session.execute(
                update(IdempotencyRow)
                .where(IdempotencyRow.scope == scope, IdempotencyRow.key == key,
                       or_(IdempotencyRow.expires_at <= now,
                           (IdempotencyRow.status.is_(None)) & (IdempotencyRow.locked_at <= stale_before)))
                .values(fingerprint=fingerprint, locked_at=now, expires_at=expires_at, status=None, headers=None,
                        body=None))
        return Claimed(now) if taken.rowcount else InUse()  # type: ignore[attr-defined]

    @bounded
    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(
                update(IdempotencyRow).where(IdempotencyRow.scope == scope, IdempotencyRow.key == key)
                .values(status=response.status, headers=dict(response.headers), body=response.body))

    @bounded
    async def release(self, scope: str, key: str, claimed_at: datetime) -> None:
        async with self._db.sessions.begin() as session:
            await session.execute(delete(IdempotencyRow).where(
                IdempotencyRow.scope == scope, IdempotencyRow.key == key, IdempotencyRow.status.is_(None),
                IdempotencyRow.locked_at == claimed_at))

    @bounded
    async def purge(self, now: datetime) -> int:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(IdempotencyRow).where(IdempotencyRow.expires_at <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]
