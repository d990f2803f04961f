"""``UsageSink``: where the shipper sends batches of usage events besides the store.

The shipper calls ``write(batch)`` with each batch it has committed to the store, before it marks
the batch shipped, and again after a crash (the same events, maybe batched differently): a sink
must therefore be idempotent per event id, like the store. A sink that fails raises; the shipper
keeps the batch and retries it later (the store's insert is idempotent too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inferlab.metering.event import UsageEvent


class UsageSink(Protocol):
    async def write(self, events: Sequence[UsageEvent]) -> int:
        """Store ``events`` once each; how many were new."""
        ...


class BatchStore(Protocol):
    async def insert_batch(self, events: Sequence[UsageEvent]) -> int: ...


class TeeStore:
    """What the shipper writes to when a sink answers the reports: the store first (the ledger of
    record), then the sink. A sink that fails fails the batch, which the shipper keeps and retries
    (both writes are idempotent), so the sink never misses an event the store has — at the price
    of the store waiting for the sink while it is down (the outbox holds the events meanwhile)."""

    def __init__(self, store: BatchStore, sink: UsageSink) -> None:
        self._store = store
        self._sink = sink

    async def insert_batch(self, events: Sequence[UsageEvent]) -> int:
        new = await self._store.insert_batch(events)
        await self._sink.write(events)
        return new
