"""The store's interface and what ``begin`` answers, with the pure decision over a found record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from inferlab.errors import Conflict, InferLabError


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What is replayed: the status, the selected headers and the body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Record:
    """A key as stored: its fingerprint, when it was claimed, and its response once there is one."""

    fingerprint: str
    locked_at: datetime
    expires_at: datetime
    response: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """The key is this request's: run it, then ``complete`` or ``release`` (with ``at``: the claim's
    time, which names it — a release never removes a later claim of the same key)."""

    at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Replay:
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class InUse:
    """The first request with this key is still running."""


@dataclass(frozen=True, slots=True)
class Conflicting:
    """The key was used for another request (another method, path or body)."""


Begun = Claimed | Replay | InUse | Conflicting


def decide(record: Record, fingerprint: str, now: datetime, stale_before: datetime) -> Begun | None:
    """What a found record means for a request; None: the record is dead (expired, or claimed by a
    request that never answered before ``stale_before``) and may be taken over."""
    if record.expires_at <= now:
        return None
    if record.response is None and record.locked_at <= stale_before:
        return None
    if record.fingerprint != fingerprint:
        return Conflicting()
    if record.response is None:
        return InUse()
    return Replay(record.response)


class IdempotencyStore(Protocol):
    async def begin(self, scope: str, key: str, fingerprint: str, now: datetime, expires_at: datetime,
                    stale_before: datetime) -> Begun:
        """Claim ``key`` in ``scope`` for this request, or say why not (atomic across replicas)."""
        ...

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        """Keep the claimed key's response until its expiry."""
        ...

    async def release(self, scope: str, key: str, claimed_at: datetime) -> None:
        """Forget the claim made at ``claimed_at`` if it has no response (a 5xx, a stream, an error)."""
        ...

    async def purge(self, now: datetime) -> int:
        """Delete the keys expired at ``now``; how many."""
        ...


class IdempotencyKeyReused(InferLabError):
    status = 422
    error_type = "invalid_request_error"
    default_code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    default_code = "idempotency_key_in_use"
