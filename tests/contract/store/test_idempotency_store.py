"""One ``IdempotencyStore`` contract, every implementation: in process, SQLite and PostgreSQL.

A key is claimed once — of concurrent claims exactly one wins — and then answers the same request
with its stored response, another request with ``Conflicting``, anything while it runs with
``InUse``; a released, expired or abandoned key can be claimed again; scopes never meet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inferlab.idempotency import Claimed, Conflicting, IdempotencyStore, InUse, Replay, StoredResponse
from inferlab.idempotency.memory import MemoryIdempotencyStore
from inferlab.store import Database, upgrade
from inferlab.store.idempotency import SqlIdempotencyStore

T0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
DAY = timedelta(days=1)
LOCK = timedelta(minutes=5)
CREATED = StoredResponse(201, {"Content-Type": "application/json"}, b'{"id": "k1"}')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def idem_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))  # migrated to head, shared by the session


@pytest.fixture
async def idem(idem_url: str | None) -> AsyncIterator[IdempotencyStore]:
    if idem_url is None:
        yield MemoryIdempotencyStore()
        return
    database = Database(idem_url)
    if database.dialect == "sqlite":
        await upgrade(database)
    try:
        yield SqlIdempotencyStore(database)
    finally:
        await database.close()


@pytest.fixture
def scope() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}/user:u1"  # the PostgreSQL database is shared by the session


async def begin(store: IdempotencyStore, scope: str, key: str, fingerprint: str, now: datetime = T0) -> object:
    return await store.begin(scope, key, fingerprint, now, now + DAY, now - LOCK)


async def test_first_claims_then_replays_the_stored_response(idem: IdempotencyStore, scope: str) -> None:
    claimed = await begin(idem, scope, "k", "fp-a")
    assert claimed == Claimed() and isinstance(claimed, Claimed) and claimed.at == T0
    assert await begin(idem, scope, "k", "fp-a", T0 + timedelta(seconds=1)) == InUse()
    await idem.complete(scope, "k", CREATED)
    assert await begin(idem, scope, "k", "fp-a", T0 + timedelta(hours=23)) == Replay(CREATED)


async def test_another_request_with_the_key_conflicts(idem: IdempotencyStore, scope: str) -> None:
    assert await begin(idem, scope, "k", "fp-a") == Claimed()
    assert await begin(idem, scope, "k", "fp-b") == Conflicting()  # while it runs
    await idem.complete(scope, "k", CREATED)
    assert await begin(idem, scope, "k", "fp-b") == Conflicting()  # and after


async def test_scopes_are_independent(idem: IdempotencyStore, scope: str) -> None:
    other = scope.replace("tenant-", "other-")
    assert await begin(idem, scope, "same", "fp-a") == Claimed()
    assert await begin(idem, other, "same", "fp-b") == Claimed()
    await idem.complete(other, "same", StoredResponse(200, {}, b"other"))
    await idem.complete(scope, "same", CREATED)
    assert await begin(idem, scope, "same", "fp-a") == Replay(CREATED)
    assert await begin(idem, other, "same", "fp-b") == Replay(StoredResponse(200, {}, b"other"))


async def test_a_released_key_can_be_claimed_again(idem: IdempotencyStore, scope: str) -> None:
    assert await begin(idem, scope, "k", "fp-a") == Claimed()
    await idem.release(scope, "k", T0)  # the first attempt ended in a 5xx
    later = T0 + timedelta(seconds=1)
    assert await begin(idem, scope, "k", "fp-b", later) == Claimed()
    await idem.release(scope, "k", T0)  # names the first claim: the second stays
    assert await begin(idem, scope, "k", "fp-b", later) == InUse()
    await idem.complete(scope, "k", CREATED)
    await idem.release(scope, "k", later)  # a completed key is never released
    assert await begin(idem, scope, "k", "fp-b") == Replay(CREATED)


async def test_expired_and_abandoned_keys_are_taken_over(idem: IdempotencyStore, scope: str) -> None:
    assert await begin(idem, scope, "done", "fp-a") == Claimed()
    await idem.complete(scope, "done", CREATED)
    assert await begin(idem, scope, "done", "fp-b", T0 + DAY) == Claimed()  # expired: a new request
    assert await begin(idem, scope, "stuck", "fp-a") == Claimed()  # its process died mid-request
    assert await begin(idem, scope, "stuck", "fp-a", T0 + LOCK - timedelta(seconds=1)) == InUse()
    assert await begin(idem, scope, "stuck", "fp-a", T0 + LOCK) == Claimed()


async def test_purge_deletes_only_expired_keys(idem: IdempotencyStore, scope: str) -> None:
    await begin(idem, scope, "old", "fp")
    await idem.complete(scope, "old", CREATED)
    await begin(idem, scope, "new", "fp", T0 + timedelta(hours=12))
    await idem.complete(scope, "new", CREATED)
    assert await idem.purge(T0 + DAY) >= 1  # PostgreSQL's database is shared: earlier tests' keys too
    assert await begin(idem, scope, "new", "fp", T0 + DAY) == Replay(CREATED)
    assert await begin(idem, scope, "old", "other", T0 + DAY) == Claimed()


async def test_concurrent_claims_one_wins(idem: IdempotencyStore, scope: str) -> None:
    outcomes = await asyncio.gather(*(begin(idem, scope, "race", "fp") for _ in range(8)))
    assert outcomes.count(Claimed()) == 1
    assert outcomes.count(InUse()) == 7


async def test_binary_bodies_and_headers_round_trip(idem: IdempotencyStore, scope: str) -> None:
    stored = StoredResponse(204, {"Location": "/admin/keys/k1", "ETag": '"v1"'}, bytes(range(256)))
    await begin(idem, scope, "bin", "fp")
    await idem.complete(scope, "bin", stored)
    assert await begin(idem, scope, "bin", "fp") == Replay(stored)
