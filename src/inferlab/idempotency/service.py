"""The keys' clock and lifetime over a store, the caller's scope and the request fingerprint, and
the purge loop; built by ``build_idempotency`` (the SQL store when there is a database)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from inferlab.auth.model import Principal
from inferlab.config.idempotency import IdempotencySettings
from inferlab.idempotency.memory import MemoryIdempotencyStore
from inferlab.idempotency.protocol import Begun, IdempotencyStore, StoredResponse

MAX_KEY_LENGTH = 255


def valid_key(key: str) -> bool:
    """1–255 characters, none of them a control character."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= char != "\x7f" for char in key)


def scope_of(principal: Principal | None) -> str:
    """Whose keys these are: the user (all their keys) within their tenant; a key of its own when it
    belongs to no user; one anonymous scope without authentication."""
    if principal is None:
        return "anonymous"
    if principal.user_id:
        return f"{principal.tenant_id}/user:{principal.user_id}"
    return f"{principal.tenant_id}/key:{principal.key_id or ''}"


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    """What makes two requests the same: method, path with query, and the body's hash."""
    digest = hashlib.sha256()
    for part in (method.encode(), path_qs.encode(), hashlib.sha256(body).digest()):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.hexdigest()


class Idempotency:
    def __init__(self, store: IdempotencyStore, settings: IdempotencySettings, logger: logging.Logger) -> None:
        self.store = store
        self.settings = settings
        self._log = logger

    async def begin(self, scope: str, key: str, fingerprint: str) -> Begun:
        now = datetime.now(UTC)
        return await self.store.begin(scope, key, fingerprint, now, now + timedelta(seconds=self.settings.ttl_s),
                                      now - timedelta(seconds=self.settings.lock_timeout_s))

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        await self.store.complete(scope, key, response)

    async def release(self, scope: str, key: str) -> None:
        await self.store.release(scope, key)

    async def keep_purging(self) -> None:
        while True:
            await asyncio.sleep(self.settings.purge_interval_s)
            try:
                purged = await self.store.purge(datetime.now(UTC))
            except Exception:  # noqa: BLE001 - retried at the next interval
                self._log.exception("purging expired idempotency keys failed")
                continue
            if purged:
                self._log.info("expired idempotency keys purged", extra={"count": purged})


def build_idempotency(settings: IdempotencySettings, database: Any | None, logger: logging.Logger) -> Idempotency:
    """Keys in the SQL store when there is a database (shared by every replica), else in process."""
    store: IdempotencyStore
    if database is not None:
        from inferlab.store.idempotency import SqlIdempotencyStore

        store = SqlIdempotencyStore(database)
    else:
        store = MemoryIdempotencyStore(settings.memory_max_entries)
    return Idempotency(store, settings, logger)
