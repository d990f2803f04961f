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
