"""The runbook's PostgreSQL backup and restore (scripts/ops/pg-backup.sh, pg-restore.sh) against
the real server, in a private database: back up, drop the database, restore — the keys still
authenticate, the revoked one stays revoked, and the schema is at the head revision."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR, AuthService, IdentityAdmin, Scopes
from inferlab.errors import AuthenticationFailed, StoreUnavailable
from inferlab.store import Database, SqlIdentityStore, current_revision, head_revision
from inferlab.testing.needs import migrated_postgres_database

ROOT = Path(__file__).resolve().parents[3]
SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PEPPER = b"backup-restore-pepper-0123456789"


def script(name: str, *args: str) -> str:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "ops" / name), *args], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def seed(url: str) -> tuple[str, str]:
    database = Database(url)
    try:
        admin = IdentityAdmin(SqlIdentityStore(database), PEPPER)
        root = await admin.create_user(LOCAL_OPERATOR, "root", "platform-admin")
        kept = (await admin.create_key(LOCAL_OPERATOR, name="kept", user_id=root.id, scopes=ALL_SCOPES)).token
        revoked = await admin.create_key(LOCAL_OPERATOR, name="revoked", user_id=root.id, scopes=Scopes())
        await admin.revoke_key(LOCAL_OPERATOR, revoked.key.id)
        return kept, revoked.token
    finally:
        await database.close()


async def check(url: str, kept: str, revoked: str) -> str | None:
    database = Database(url)
    try:
        auth = AuthService(SqlIdentityStore(database), PEPPER)
        principal = await auth.authenticate(kept)
        assert principal.key_id is not None
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(revoked)
        return await current_revision(database)
    finally:
        await database.close()


async def drop(name: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test", timeout=5)
    try:
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.mark.postgres
def test_backup_drop_restore_round_trip(tmp_path: Path) -> None:
    with migrated_postgres_database("inferlab_backup") as name:
        url = f"{SERVER}/{name}"
        kept, revoked = asyncio.run(seed(url))
        dump = tmp_path / "inferlab.dump"
        assert f"backup: {dump}" in script("pg-backup.sh", url, str(dump))
        asyncio.run(drop(name))
        with pytest.raises(StoreUnavailable):  # gone
            asyncio.run(check(url, kept, revoked))
        restored = script("pg-restore.sh", url, str(dump))
        assert f"created database {name}" in restored and f"(schema revision {head_revision()})" in restored
        assert asyncio.run(check(url, kept, revoked)) == head_revision()
        refused = subprocess.run(["bash", str(ROOT / "scripts" / "ops" / "pg-restore.sh"), url, str(dump)],
                                 capture_output=True, text=True, check=False, timeout=60)
        assert refused.returncode == 1 and "restore into an empty database" in refused.stderr
