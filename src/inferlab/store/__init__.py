"""The store: SQLAlchemy 2 async models and Alembic migrations, SQLite by default, PostgreSQL by URL."""

from inferlab.store.engine import Database, database_url, is_sqlite
from inferlab.store.identity import SqlIdentityStore
from inferlab.store.migrate import current_revision, head_revision, upgrade

__all__ = ["Database", "SqlIdentityStore", "current_revision", "database_url", "head_revision", "is_sqlite", "upgrade"]
