"""Authentication: a presented credential in, a ``Principal`` out — from an in-process TTL cache.

Warm path, per request: parse the key, one dict lookup, one HMAC, ``hmac.compare_digest``, one
dict write for the last-used time. The database is read only when a key id is not cached (or its
entry is older than ``ttl_s``), so a revocation reaches every replica within ``ttl_s``. Last-used
times are written in batches by ``LastUsedRecorder``.

While the store is unavailable (``StoreUnavailable``), a cached answer younger than
``outage_grace_s`` stands in for the store's: a key validated that recently keeps working, a key id
known not to exist keeps failing. A key known revoked is refused whatever the outage lasts (a
revocation is final). Anything else is a 503 — never a 401 for a key the store might accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from inferlab.auth import keys
from inferlab.auth.model import KeyIdentity, Principal
from inferlab.auth.protocol import KeyStore
from inferlab.errors import AuthenticationFailed, StoreUnavailable

if TYPE_CHECKING:
    from inferlab.auth.jwt import JwtVerifier

log = logging.getLogger("inferlab.auth")

INVALID = "Invalid API key. Create one with `inferlab keys create` or the admin API."


@dataclass(slots=True)
class _Entry:
    fresh_until: float  # monotonic
    key_hash: str  # "" for a key id that does not exist or cannot authenticate
    principal: Principal | None
    valid_until: float | None  # wall clock (the key's expiry)
    loaded_at: float = 0.0  # monotonic: when the store said so
    revoked: bool = False  # final: refused even when the store cannot be asked


class LastUsedRecorder:
    """Collects last-used times in memory and writes them in one batch every ``interval_s``."""

    def __init__(self, store: KeyStore, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._pending: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, key_id: str, now: float) -> None:
        self._pending[key_id] = now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inferlab-auth-last-used")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        used = {key_id: datetime.fromtimestamp(at, UTC) for key_id, at in batch.items()}
        try:
            await self._store.touch_last_used(used)
        except Exception:  # a lost batch of last-used times must not take the gateway down; retried next time
            log.warning("could not write last-used times", exc_info=True, extra={"keys": len(used)})
            for key_id, at in batch.items():
                self._pending.setdefault(key_id, at)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()


class AuthService:
    def __init__(
        self,
        store: KeyStore,
        pepper: bytes,
        *,
        ttl_s: float = 5.0,
        max_entries: int = 10000,
        last_used: LastUsedRecorder | None = None,
        jwt: JwtVerifier | None = None,
        outage_grace_s: float = 0.0,
        previous_peppers: tuple[bytes, ...] = (),
    ) -> None:
        """``previous_peppers``: being rotated out; a key they verify is re-hashed with ``pepper``."""
        self._store = store
        self._pepper = pepper
        self._previous = previous_peppers
        self._ttl_s = ttl_s
        self._grace_s = outage_grace_s
        self._max_entries = max_entries
        self._cache: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[_Entry]] = {}
        self.last_used = last_used or LastUsedRecorder(store, 30.0)
        self.jwt = jwt

    async def authenticate(self, token: str) -> Principal:
        parsed = keys.parse(token)
        if parsed is None:
            if self.jwt is not None and self.jwt.looks_like_jwt(token):
                return await self.jwt.verify(token)
            raise AuthenticationFailed(INVALID)
        key_id, secret = parsed
        entry = self._cache.get(key_id)
        if entry is None or entry.fresh_until <= time.monotonic():
            entry = await self._refresh(key_id, entry)
        principal = entry.principal
        if principal is None:
            raise AuthenticationFailed(INVALID)
        if not keys.matches(self._pepper, key_id, secret, entry.key_hash):
            if not any(keys.matches(old, key_id, secret, entry.key_hash) for old in self._previous):
                raise AuthenticationFailed(INVALID)
            entry = await self._rehash(key_id, secret, entry)
        now = time.time()
        if entry.valid_until is not None and now >= entry.valid_until:
            raise AuthenticationFailed("This API key has expired", code="expired_api_key")
        self.last_used.record(key_id, now)
        return principal

    async def principal_of_key(self, key_id: str) -> Principal:
        """The principal of a key already verified once (a dashboard session names its key id):
        the key is re-read like any credential, so revocation, expiry and a disabled owner apply."""
        entry = self._cache.get(key_id)
        if entry is None or entry.fresh_until <= time.monotonic():
            entry = await self._refresh(key_id, entry)
        if entry.principal is None:
            raise AuthenticationFailed(INVALID)
        if entry.valid_until is not None and time.time() >= entry.valid_until:
            raise AuthenticationFailed("This API key has expired", code="expired_api_key")
        return entry.principal

    async def _rehash(self, key_id: str, secret: str, entry: _Entry) -> _Entry:
        """A key hashed with a pepper being rotated out: store its hash under the current pepper.
        A store that cannot take the write now leaves the old hash; the next use tries again."""
        new_hash = keys.hash_secret(self._pepper, key_id, secret)
        try:
            await self._store.rehash_key(key_id, entry.key_hash, new_hash)
        except StoreUnavailable:
            log.warning("pepper rotation: could not re-hash a key now", extra={"key_id": key_id})
            return entry
        log.info("pepper rotation: key re-hashed with the current pepper", extra={"key_id": key_id})
        fresh = replace(entry, key_hash=new_hash)
        self._cache[key_id] = fresh
        return fresh

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache at once (revocation here; other replicas wait ``ttl_s``)."""
        self._cache.pop(key_id, None)

    async def _refresh(self, key_id: str, stale: _Entry | None) -> _Entry:
        try:
            return await self._load(key_id)
        except StoreUnavailable:
            if stale is not None and (stale.revoked or time.monotonic() < stale.loaded_at + self._grace_s):
                return stale  # the store's last word, recent enough (or final)
            raise

    async def _load(self, key_id: str) -> _Entry:
        pending = self._loading.get(key_id)
        if pending is not None:  # one database read per key id, however many requests wait for it
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._loading[key_id] = future
        try:
            entry = self._entry(await self._store.identify(key_id))
            if len(self._cache) >= self._max_entries:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key_id] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody warns about it
            raise
        finally:
            del self._loading[key_id]

    def _entry(self, found: KeyIdentity | None) -> _Entry:
        now = time.monotonic()
        fresh_until = now + self._ttl_s
        if found is None or found.key.revoked or found.user_disabled:
            return _Entry(fresh_until, "", None, None, now, revoked=found is not None and found.key.revoked)
        key = found.key
        principal = Principal(
            tenant_id=key.tenant_id, user_id=key.user_id, role=found.role, scopes=key.scopes,
            key_id=key.id, expires_at=key.expires_at, source="api_key",
        )
        valid_until = key.expires_at.timestamp() if key.expires_at is not None else None
        return _Entry(fresh_until, key.key_hash, principal, valid_until, now)
