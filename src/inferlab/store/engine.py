"""Engine and session factory: SQLite (aiosqlite) in the data directory by default, PostgreSQL
(asyncpg) by ``database_url``. The drivers are imported by SQLAlchemy only when their URL is used.

Every store method goes through the database's ``StoreGuard`` (``store/guard.py``): bounded by
``timeout_s``, 503 while the database is down. The engine's own waits (connect, a pool slot,
SQLite's busy wait) are bounded by the same timeout, so an abandoned call does not linger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from inferlab.store.guard import StoreGuard

SQLITE_FILE = "inferlab.db"


def database_url(data_dir: Path, configured: str | None) -> str:
    """The configured URL, or the SQLite file in ``data_dir`` (created on demand)."""
    if configured:
        return configured
    data_dir = Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{data_dir / SQLITE_FILE}"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(busy_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers in other processes don't block writers
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return on_connect


def create_engine(url: str, timeout_s: float = 2.0) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(max(1, int(timeout_s * 1000))))
        return engine
    connect_args = {"timeout": timeout_s} if make_url(url).get_driver_name() == "asyncpg" else {}
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=timeout_s,
                               connect_args=connect_args)


class Database:
    """One engine, its session factory and its guard; opened in the app's lifespan, disposed with it."""

    def __init__(self, url: str, *, timeout_s: float = 2.0, retry_s: float = 1.0) -> None:
        self.url = url
        self.engine = create_engine(url, timeout_s)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine, expire_on_commit=False)
        self.guard = StoreGuard(self._select_one, timeout_s=timeout_s, retry_s=retry_s)

    async def _select_one(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def ping(self) -> None:
        """One round trip, bounded; ``StoreUnavailable`` at once while the store is known down."""
        await self.guard.call(self._select_one())

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.guard.close()
        # A paused database never acknowledges a graceful close (and the pool swallows a cancellation
        # while closing), so the pool is closed in a task of its own and, past the timeout, cut.
        disposing = asyncio.get_running_loop().create_task(self.engine.dispose())
        if not (await asyncio.wait((disposing,), timeout=self.guard.timeout_s))[0]:
            _terminate_pooled(self.engine)
            disposing.cancel()
            await asyncio.wait((disposing,), timeout=self.guard.timeout_s)
        if disposing.done() and not disposing.cancelled():
            disposing.result()


def _terminate_pooled(engine: AsyncEngine) -> None:
    pooled = getattr(getattr(engine.sync_engine.pool, "_pool", None), "queue", ())  # QueuePool's idle records
    for record in list(pooled):
        if record.dbapi_connection is not None:
            record.dbapi_connection.terminate()
