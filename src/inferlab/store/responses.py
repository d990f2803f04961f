"""``ResponseStore`` over SQLAlchemy: stored Responses API responses, per tenant, until they expire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from inferlab.responses.store import StoredResponse
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import ResponseRow


class SqlResponseStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def save(self, stored: StoredResponse) -> None:
        async with self._db.sessions.begin() as session:
            session.add(ResponseRow(id=stored.id, tenant_id=stored.tenant_id, created_at=stored.created_at,
                                    expires_at=stored.expires_at, response=stored.response,
                                    input_items=stored.input_items, history=stored.history))

    @bounded
    async def get(self, tenant_id: str, response_id: str, now: datetime) -> StoredResponse | None:
        async with self._db.sessions() as session:
            row = await session.get(ResponseRow, response_id)
        if row is None or row.tenant_id != tenant_id or row.expires_at <= now:
            return None
        return StoredResponse(row.id, row.tenant_id, row.created_at, row.expires_at, row.response, row.input_items,
                              row.history)

    @bounded
    async def delete(self, tenant_id: str, response_id: str) -> bool:
        async with self._db.sessions.begin() as session:
            result = await session.execute(
                delete(ResponseRow).where(ResponseRow.id == response_id, ResponseRow.tenant_id == tenant_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @bounded
    async def purge(self, now: datetime) -> int:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(ResponseRow).where(ResponseRow.expires_at <= now))
        return int(result.rowcount)  # type: ignore[attr-defined]
