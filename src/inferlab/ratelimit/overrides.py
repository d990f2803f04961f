"""Stored limits of the caller's key, user and tenant, from an in-process TTL cache.

Warm path: three dict lookups. Cold: one query for the three subjects. A change made through the
admin API or the CLI reaches every replica within ``ttl_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from inferlab.errors import ServiceUnavailable
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.policy import Overrides


class LimitStore(Protocol):
    async def get_many(self, subjects: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Overrides]: ...

    async def put(self, subject: str, subject_id: str, limits: Overrides) -> None: ...


class OverrideCache:
    def __init__(self, store: LimitStore, ttl_s: float, max_entries: int = 10000, *,
                 errors: tuple[type[BaseException], ...] = (OSError,), logger: logging.Logger | None = None) -> None:
        self._store = store
        self._errors = errors
        self._log = logger or logging.getLogger("inferlab.ratelimit")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._cache: dict[tuple[str, str], tuple[float, Overrides | None]] = {}

    async def of(self, who: Identity) -> Mapping[str, Overrides]:
        now = time.monotonic()
        subjects = (("key", who.key), ("user", who.user), ("tenant", who.tenant))
        found: dict[str, Overrides] = {}
        missing: list[tuple[str, str]] = []
        for subject in subjects:
            entry = self._cache.get(subject)
            if entry is None or entry[0] <= now:
                missing.append(subject)
            elif entry[1] is not None:
                found[subject[0]] = entry[1]
        if missing:
            try:
                loaded = await self._store.get_many(missing)
            except self._errors as exc:
                # the store is down: the limits last read still apply (else the configured defaults)
                # until it answers again (retried next request). The store's guard logs an outage once.
                outage = isinstance(exc, ServiceUnavailable)
                self._log.log(logging.DEBUG if outage else logging.WARNING,
                              "stored limits unavailable: the last known ones apply", exc_info=not outage)
                for subject in missing:
                    stale = self._cache.get(subject)
                    if stale is not None and stale[1] is not None:
                        found[subject[0]] = stale[1]
                return found
            if len(self._cache) + len(missing) > self._max_entries:
                self._cache.clear()
            for subject in missing:
                value = loaded.get(subject)
                self._cache[subject] = (now + self._ttl_s, value)
                if value is not None:
                    found[subject[0]] = value
        return found

    def forget(self, subject: str, subject_id: str) -> None:
        self._cache.pop((subject, subject_id), None)
