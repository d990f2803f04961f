"""Tiers added or replaced through the admin API, in the SQL store (``inferlab.tenants.tier``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import TierRow


class SqlTierStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @bounded
    async def all_tiers(self) -> dict[str, dict[str, Any]]:
        async with self._db.sessions() as session:
            return {row.name: dict(row.spec) for row in (await session.scalars(select(TierRow))).all()}

    @bounded
    async def put_tier(self, name: str, spec: dict[str, Any], when: datetime) -> None:
        async with self._db.sessions.begin() as session:
            row = await session.get(TierRow, name)
            if row is None:
                session.add(TierRow(name=name, spec=spec, updated_at=when))
            else:
                row.spec, row.updated_at = spec, when

    @bounded
    async def delete_tier(self, name: str) -> bool:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(TierRow).where(TierRow.name == name))
        return bool(getattr(result, "rowcount", 0))
