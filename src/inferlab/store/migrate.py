"""Alembic, driven from code: ``inferlab db upgrade`` and the automatic upgrade on ``serve``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from inferlab.store.engine import Database


def alembic_config(url: str | None = None) -> Config:
    folder = Path(str(resources.files("inferlab.store").joinpath("migrations")))
    config = Config()
    config.set_main_option("script_location", str(folder))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` on the database's own connection, in one transaction."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(database: Database) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
