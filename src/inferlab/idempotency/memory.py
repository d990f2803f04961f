"""``IdempotencyStore`` in process: for a gateway without a database (one process, bounded)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from inferlab.idempotency.protocol import Begun, Claimed, Record, StoredResponse, decide


class MemoryIdempotencyStore:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._records: OrderedDict[tuple[str, str], Record] = OrderedDict()

    async def begin(self, scope: str, key: str, fingerprint: str, now: datetime, expires_at: datetime,
                    stale_before: datetime) -> Begun:
        found = self._records.get((scope, key))
        if found is not None:
            outcome = decide(found, fingerprint, now, stale_before)
            if outcome is not None:
                return outcome
            del self._records[(scope, key)]
        self._records[(scope, key)] = Record(fingerprint, now, expires_at)
        while len(self._records) > self._max_entries:
            self._records.popitem(last=False)
        return Claimed(now)

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        found = self._records.get((scope, key))
        if found is not None:
            self._records[(scope, key)] = replace(found, response=response)

    async def release(self, scope: str, key: str, claimed_at: datetime) -> None:
        found = self._records.get((scope, key))
        if found is not None and found.response is None and found.locked_at == claimed_at:
            del self._records[(scope, key)]

    async def purge(self, now: datetime) -> int:
        expired = [name for name, record in self._records.items() if record.expires_at <= now]
        for name in expired:
            del self._records[name]
        return len(expired)
