"""The keys' clock and lifetime over a store, the caller's scope and the request fingerprint, and
the purge loop; built by ``build_idempotency`` (the SQL store when there is a database)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from inferlab.auth.model import Principal
from inferlab.config.idempotency import IdempotencySettings
from inferlab.idempotency.memory import MemoryIdempotencyStore
from inferlab.idempotency.protocol import Begun, Claimed, IdempotencyStore, InUse, Replay, StoredResponse

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


def stored_key(scope: str, key: str) -> str:
    """The key as stored: a hash, never the key itself (it unseals the stored body)."""
    return hashlib.sha256(b"inferlab-idempotency-key\0" + scope.encode() + b"\0" + key.encode()).hexdigest()


def _cipher(scope: str, key: str) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hashlib.sha256(b"inferlab-idempotency-seal\0" + scope.encode() + b"\0" + key.encode()).digest())


def seal(scope: str, key: str, body: bytes) -> bytes:
    """The body encrypted under the caller's own key (AES-GCM): a stored response that carries a
    secret (a created API key) is unreadable from the store without the Idempotency-Key."""
    nonce = os.urandom(12)
    return nonce + bytes(_cipher(scope, key).encrypt(nonce, body, None))


def unseal(scope: str, key: str, sealed: bytes) -> bytes:
    return bytes(_cipher(scope, key).decrypt(sealed[:12], sealed[12:], None))


class Idempotency:
    """The keys over a store: lifetimes from the settings, keys hashed, bodies sealed.

    A claim whose store call failed (a timeout: 503) may still have been written once the store
    came back, with no request left to answer it. This process remembers such claims
    (``_unsure``) and, when the same caller repeats the key here and finds it "in use", releases
    exactly that claim (named by its time) and claims again — instead of 409 for ``lock_timeout_s``."""

    def __init__(self, store: IdempotencyStore, settings: IdempotencySettings, logger: logging.Logger) -> None:
        self.store = store
        self.settings = settings
        self._log = logger
        self._unsure: dict[tuple[str, str], list[datetime]] = {}  # claims whose store call failed, by time

    async def begin(self, scope: str, key: str, fingerprint: str) -> Begun:
        name = (scope, stored_key(scope, key))
        begun = await self._claim(name, fingerprint)
        unsure = self._unsure.pop(name, None) if isinstance(begun, InUse) else None
        if unsure is not None:  # our own claim, written after its request had already answered 503
            for claimed_at in unsure:
                await self.store.release(*name, claimed_at)
            begun = await self._claim(name, fingerprint)
        if isinstance(begun, Claimed):
            self._unsure.pop(name, None)
        if isinstance(begun, Replay):
            return Replay(replace(begun.response, body=unseal(scope, key, begun.response.body)))
        return begun

    async def _claim(self, name: tuple[str, str], fingerprint: str) -> Begun:
        now = datetime.now(UTC)
        try:
            return await self.store.begin(*name, fingerprint, now, now + timedelta(seconds=self.settings.ttl_s),
                                          now - timedelta(seconds=self.settings.lock_timeout_s))
        except BaseException:
            if name in self._unsure or len(self._unsure) < self.settings.memory_max_entries:
                self._unsure.setdefault(name, []).append(now)
            raise

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        await self.store.complete(scope, stored_key(scope, key),
                                  replace(response, body=seal(scope, key, response.body)))

    async def release(self, scope: str, key: str, claimed_at: datetime) -> None:
        await self.store.release(scope, stored_key(scope, key), claimed_at)

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
