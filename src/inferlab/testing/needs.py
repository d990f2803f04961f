"""What a test needs from the machine it runs on: missing, it is skipped — or fails under CI
(``CI=true``), so a missing install step or service can never hide behind a skip.

Imports pytest: for test code only (``inferlab.testing`` itself never imports this module).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

__all__ = ["in_ci", "migrated_postgres_database", "redis_available", "require", "shared_redis_url"]

POSTGRES = "127.0.0.1:5432"  # user postgres, trust auth, an existing database `test`


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false; fail it instead under CI."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def shared_redis_url() -> str:
    """The Redis tests share: ``$INFERLAB_TEST_REDIS_URL``, else redis://127.0.0.1:6379/0."""
    return os.environ.get("INFERLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def _pg_admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    connection = await asyncpg.connect(f"postgresql://postgres@{POSTGRES}/test", timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    from inferlab.store import Database, upgrade

    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.close()


@contextlib.contextmanager
def migrated_postgres_database(prefix: str) -> Iterator[str]:
    """A throwaway PostgreSQL database with InferLab's schema, dropped afterwards; its name.
    Skipped (failed under CI) when the server is not reachable."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        require(False, f"PostgreSQL is not reachable at {POSTGRES}: {exc}")
    try:
        asyncio.run(_migrate(f"postgresql+asyncpg://postgres@{POSTGRES}/{name}"))
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
