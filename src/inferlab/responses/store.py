"""Where stored responses live: the protocol, and an in-process store for a gateway without a
database (single process, bounded, lost with it — the SQL store is ``store/responses.py``)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response kept for ``GET /v1/responses/{id}`` and ``previous_response_id``."""

    id: str
    tenant_id: str
    created_at: datetime
    expires_at: datetime
    response: dict[str, Any]  # the response object as the client got it
    input_items: list[dict[str, Any]]  # this turn's input items, with ids
    history: list[dict[str, Any]]  # the whole conversation as chat messages, this turn's answer included


class ResponseStore(Protocol):
    async def save(self, stored: StoredResponse) -> None: ...

    async def get(self, tenant_id: str, response_id: str, now: datetime) -> StoredResponse | None:
        """The tenant's response, unless it expired (another tenant's: ``None``)."""
        ...

    async def delete(self, tenant_id: str, response_id: str) -> bool: ...

    async def purge(self, now: datetime) -> int:
        """Forget the expired responses; how many."""
        ...


class MemoryResponseStore:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._rows: OrderedDict[str, StoredResponse] = OrderedDict()

    async def save(self, stored: StoredResponse) -> None:
        self._rows[stored.id] = stored
        while len(self._rows) > self._max:
            self._rows.popitem(last=False)

    async def get(self, tenant_id: str, response_id: str, now: datetime) -> StoredResponse | None:
        found = self._rows.get(response_id)
        if found is None or found.tenant_id != tenant_id or found.expires_at <= now:
            return None
        return found

    async def delete(self, tenant_id: str, response_id: str) -> bool:
        found = self._rows.get(response_id)
        if found is None or found.tenant_id != tenant_id:
            return False
        del self._rows[response_id]
        return True

    async def purge(self, now: datetime) -> int:
        expired = [key for key, row in self._rows.items() if row.expires_at <= now]
        for key in expired:
            del self._rows[key]
        return len(expired)
