"""The runbook's pepper rotation (docs/operations.md#rotating-the-pepper-secret): with the new pepper
configured and the old one in ``auth.previous_peppers``, existing keys keep working and are
re-hashed on first use; once every key has been used, the old pepper can go."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.auth import ALL_SCOPES, LOCAL_OPERATOR, AuthService, IdentityAdmin
from inferlab.auth.pepper import previous_peppers
from inferlab.config import AuthSettings
from inferlab.errors import AuthenticationFailed
from inferlab.store import Database, SqlIdentityStore, upgrade

OLD, NEW = b"old-pepper-0123456789-abcdefghij", b"new-pepper-0123456789-abcdefghij"


async def test_keys_survive_a_pepper_rotation_and_are_rehashed(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await upgrade(database)
    store = SqlIdentityStore(database)
    try:
        admin = IdentityAdmin(store, OLD)
        root = await admin.create_user(LOCAL_OPERATOR, "root", "platform-admin")
        used = (await admin.create_key(LOCAL_OPERATOR, name="used", user_id=root.id, scopes=ALL_SCOPES)).token
        idle = (await admin.create_key(LOCAL_OPERATOR, name="idle", user_id=root.id, scopes=ALL_SCOPES)).token

        settings = AuthSettings(pepper=NEW.decode(), previous_peppers=[OLD.decode()])
        rotating = AuthService(store, NEW, previous_peppers=previous_peppers(settings))
        assert (await rotating.authenticate(used)).key_id is not None  # old hash: accepted, re-hashed
        with pytest.raises(AuthenticationFailed):
            await rotating.authenticate(used[:-2] + "xx")  # a wrong secret still fails

        rotated = AuthService(store, NEW)  # the old pepper removed
        assert (await rotated.authenticate(used)).key_id is not None  # its hash is the new pepper's now
        with pytest.raises(AuthenticationFailed):
            await rotated.authenticate(idle)  # never used during the rotation: re-issue it (keys rotate)
        with pytest.raises(AuthenticationFailed):
            await AuthService(store, OLD).authenticate(used)  # the old pepper no longer verifies it
    finally:
        await database.close()
