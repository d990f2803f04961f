"""The grants one process holds, renewed together so that they outlive their lease TTL.

A gateway admits and releases through ``GrantLeases``; ``keep`` (one task per process, started
by the composition root) renews every grant still held in one allocator call (per pool) each
``every_s`` — a third of the lease TTL leaves two renewals to spare. A process that dies stops
renewing, and its grants free one TTL later.
"""

from __future__ import annotations

import asyncio
import logging

from inferlab.resources.model import Grant, Refusal
from inferlab.resources.protocol import ResourceAllocator


class GrantLeases:
    def __init__(self, allocator: ResourceAllocator, logger: logging.Logger | None = None) -> None:
        self.allocator = allocator
        self._held: dict[tuple[str, str], Grant] = {}  # (pool, request id) -> grant
        self._log = logger or logging.getLogger("inferlab.resources")

    @property
    def held(self) -> int:
        """Grants admitted here and not released yet."""
        return len(self._held)

    async def admit(self, pool: str, tenant: str, kv_tokens: int, request_id: str) -> Grant | Refusal:
        decision = await self.allocator.try_admit(pool, tenant, kv_tokens, request_id)
        if isinstance(decision, Grant):
            self._held[(pool, request_id)] = decision
        return decision

    async def release(self, grant: Grant) -> bool:
        """Release exactly once: the grant leaves the renewal set before the allocator is asked."""
        self._held.pop((grant.pool, grant.request_id), None)
        return await self.allocator.release(grant)

    async def renew(self) -> int:
        """Renew every grant held here; how many were still alive."""
        grants = list(self._held.values())
        return await self.allocator.renew(grants) if grants else 0

    async def keep(self, every_s: float) -> None:
        """Renew every ``every_s`` until cancelled (the app's lifespan)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.renew()
            except Exception:  # noqa: BLE001 - the loop must outlive one failed renewal; grants then expire
                self._log.warning("renewing resource grants failed", exc_info=True)
