"""The key cache: warm requests never touch the store; a revocation lands within the TTL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferlab.auth import keys
from inferlab.auth.model import ApiKey, KeyIdentity, Scopes
from inferlab.auth.service import AuthService, LastUsedRecorder
from inferlab.errors import AuthenticationFailed

PEPPER = b"unit-pepper"


class FakeStore:
    def __init__(self) -> None:
        self.keys: dict[str, KeyIdentity] = {}
        self.identify_calls = 0
        self.touched: list[dict[str, datetime]] = []

    def add(self, role: str = "member", expires_at: datetime | None = None) -> str:
        new = keys.generate()
        key = ApiKey(new.key_id, "u1", "default", "k", keys.hash_secret(PEPPER, new.key_id, new.secret), Scopes(),
                     expires_at, False, datetime.now(UTC))
        self.keys[new.key_id] = KeyIdentity(key, role, False)  # type: ignore[arg-type]
        return new.token

    def revoke(self, token: str) -> None:
        key_id = token.split("-")[1]
        found = self.keys[key_id]
        self.keys[key_id] = dataclasses.replace(found, key=dataclasses.replace(found.key, revoked=True))

    async def identify(self, key_id: str) -> KeyIdentity | None:
        self.identify_calls += 1
        await asyncio.sleep(0)
        return self.keys.get(key_id)

    async def touch_last_used(self, used: dict[str, datetime]) -> None:
        self.touched.append(used)


def service(store: FakeStore, ttl_s: float = 5.0) -> AuthService:
    return AuthService(store, PEPPER, ttl_s=ttl_s, last_used=LastUsedRecorder(store, 60))  # type: ignore[arg-type]


async def test_warm_cache_reads_the_store_once() -> None:
    store = FakeStore()
    token = store.add(role="tenant-admin")
    auth = service(store)
    principals = await asyncio.gather(*(auth.authenticate(token) for _ in range(50)))
    assert {p.role for p in principals} == {"tenant-admin"}
    for _ in range(100):
        await auth.authenticate(token)
    assert store.identify_calls == 1


async def test_wrong_secret_is_refused_from_the_cache() -> None:
    store = FakeStore()
    token = store.add()
    auth = service(store)
    await auth.authenticate(token)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(forged)
    assert store.identify_calls == 1


async def test_unknown_key_ids_are_cached_negatively() -> None:
    store = FakeStore()
    auth = service(store)
    unknown = keys.generate().token
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(unknown)
    assert store.identify_calls == 1


async def test_revocation_lands_within_the_ttl() -> None:
    store = FakeStore()
    token = store.add()
    auth = service(store, ttl_s=0.2)
    await auth.authenticate(token)
    store.revoke(token)
    await auth.authenticate(token)  # still cached: within the TTL
    await asyncio.sleep(0.25)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(token)


async def test_forget_drops_the_local_entry_at_once() -> None:
    store = FakeStore()
    token = store.add()
    auth = service(store)
    await auth.authenticate(token)
    store.revoke(token)
    auth.forget(token.split("-")[1])
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(token)


async def test_expired_key_is_refused() -> None:
    store = FakeStore()
    token = store.add(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed) as caught:
        await service(store).authenticate(token)
    assert caught.value.code == "expired_api_key"


async def test_last_used_is_flushed_in_batches() -> None:
    store = FakeStore()
    tokens = [store.add() for _ in range(3)]
    auth = service(store)
    for _ in range(10):
        for token in tokens:
            await auth.authenticate(token)
    assert store.touched == []
    await auth.last_used.flush()
    assert len(store.touched) == 1 and len(store.touched[0]) == 3
    await auth.last_used.flush()
    assert len(store.touched) == 1


async def test_failed_lookup_reaches_every_waiter() -> None:
    class Broken(FakeStore):
        async def identify(self, key_id: str) -> Any:
            await asyncio.sleep(0.01)
            raise OSError("database down")

    auth = service(Broken())
    token = keys.generate().token
    results = await asyncio.gather(*(auth.authenticate(token) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
