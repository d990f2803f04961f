"""The Alembic migrations and the SQLAlchemy models describe the same schema, on every backend."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from inferlab.store import Database, current_revision, head_revision, upgrade
from inferlab.store.models import Base
from inferlab.store.partitions import include_name


async def test_schema_is_at_head_and_upgrade_is_idempotent(database: Database) -> None:
    assert await current_revision(database) == head_revision()
    await upgrade(database)
    assert await current_revision(database) == head_revision()


async def test_models_match_migrations(database: Database) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        changes = await connection.run_sync(diff)
    assert changes == []
