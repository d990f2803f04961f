"""The key cache while the store is unreachable: keys validated within ``outage_grace_s`` keep
working, keys known revoked stay refused, anything else is a 503 (never a 401 for a good key)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from inferlab.auth import keys
from inferlab.auth.model import ApiKey, KeyIdentity, Scopes
from inferlab.auth.service import AuthService, LastUsedRecorder
from inferlab.errors import AuthenticationFailed, StoreUnavailable

PEPPER = b"unit-pepper"


class FlakyStore:
    """A key store that can be made unreachable."""

    def __init__(self) -> None:
        self.down = False
        self.keys: dict[str, KeyIdentity] = {}

    def add(self) -> str:
        new = keys.generate()
        key = ApiKey(new.key_id, "u1", "default", "k", keys.hash_secret(PEPPER, new.key_id, new.secret), Scopes(),
                     None, False, datetime.now(UTC))
        self.keys[new.key_id] = KeyIdentity(key, "member", False)
        return new.token

    def revoke(self, token: str) -> None:
        found = self.keys[token.split("-")[1]]
        self.keys[found.key.id] = dataclasses.replace(found, key=dataclasses.replace(found.key, revoked=True))

    async def identify(self, key_id: str) -> KeyIdentity | None:
        await asyncio.sleep(0)
        if self.down:
            raise StoreUnavailable("the store does not answer", retry_after=1.0)
        return self.keys.get(key_id)

    async def touch_last_used(self, used: dict[str, datetime]) -> None:
        pass


def service(store: FlakyStore, *, grace_s: float, ttl_s: float = 0.05) -> AuthService:
    recorder = LastUsedRecorder(store, 60)  # type: ignore[arg-type]  # a KeyStore for what auth uses
    return AuthService(store, PEPPER, ttl_s=ttl_s, outage_grace_s=grace_s, last_used=recorder)  # type: ignore[arg-type]


async def test_a_recently_validated_key_keeps_working_through_an_outage() -> None:
    store = FlakyStore()
    token = store.add()
    auth = service(store, grace_s=60)
    await auth.authenticate(token)
    store.down = True
    await asyncio.sleep(0.1)  # past the cache TTL: the store is asked, fails, the cached answer holds
    for _ in range(3):
        assert (await auth.authenticate(token)).key_id == token.split("-")[1]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(forged)  # the secret is still checked against the cached hash


async def test_an_unknown_key_during_an_outage_is_503_not_401() -> None:
    store = FlakyStore()
    token = store.add()
    auth = service(store, grace_s=60)
    store.down = True
    with pytest.raises(StoreUnavailable) as refused:
        await auth.authenticate(token)
    assert refused.value.status == 503 and refused.value.retry_after is not None


async def test_a_key_known_revoked_stays_refused_whatever_the_outage_lasts() -> None:
    store = FlakyStore()
    token = store.add()
    auth = service(store, grace_s=0.1)
    await auth.authenticate(token)
    store.revoke(token)
    await asyncio.sleep(0.1)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(token)  # the cache learns it is revoked
    store.down = True
    await asyncio.sleep(0.2)  # past the grace window too
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(token)


async def test_after_the_grace_window_a_known_key_gets_503() -> None:
    store = FlakyStore()
    token = store.add()
    auth = service(store, grace_s=0.2)
    await auth.authenticate(token)
    store.down = True
    await asyncio.sleep(0.1)
    await auth.authenticate(token)
    await asyncio.sleep(0.2)
    with pytest.raises(StoreUnavailable):
        await auth.authenticate(token)
    store.down = False
    await auth.authenticate(token)  # back: validated again


async def test_no_grace_means_every_cache_miss_waits_for_the_store() -> None:
    store = FlakyStore()
    token = store.add()
    auth = service(store, grace_s=0)
    await auth.authenticate(token)
    store.down = True
    await asyncio.sleep(0.1)
    with pytest.raises(StoreUnavailable):
        await auth.authenticate(token)
    unknown = keys.generate().token
    with pytest.raises(StoreUnavailable):
        await auth.authenticate(unknown)
