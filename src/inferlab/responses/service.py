"""The Responses API's parts: the step, the store it keeps responses in, reading and deleting
them for their tenant, and the purge of expired ones (a background task)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from inferlab.config.responses import ResponsesSettings
from inferlab.errors import NotFound
from inferlab.responses.step import ServeResponses
from inferlab.responses.store import MemoryResponseStore, ResponseStore, StoredResponse


class Responses:
    def __init__(self, store: ResponseStore, settings: ResponsesSettings, logger: logging.Logger) -> None:
        self.store = store
        self.step = ServeResponses(store, retention_s=settings.retention_s)
        self._interval_s = settings.purge_interval_s
        self._log = logger

    async def get(self, tenant_id: str, response_id: str) -> StoredResponse:
        found = await self.store.get(tenant_id, response_id, datetime.now(UTC))
        if found is None:
            raise NotFound(f"Response with id '{response_id}' not found", code="response_not_found")
        return found

    async def delete(self, tenant_id: str, response_id: str) -> dict[str, Any]:
        if not await self.store.delete(tenant_id, response_id):
            raise NotFound(f"Response with id '{response_id}' not found", code="response_not_found")
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def keep_purging(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                purged = await self.store.purge(datetime.now(UTC))
            except Exception:  # noqa: BLE001 - retried at the next interval
                self._log.exception("purging expired responses failed")
                continue
            if purged:
                self._log.info("expired responses purged", extra={"count": purged})


def build_responses(settings: ResponsesSettings, database: Any | None, logger: logging.Logger) -> Responses:
    """Responses in the SQL store when there is a database, else in process."""
    store: ResponseStore
    if database is not None:
        from inferlab.store.responses import SqlResponseStore

        store = SqlResponseStore(database)
    else:
        store = MemoryResponseStore(settings.memory_max_entries)
    return Responses(store, settings, logger)
