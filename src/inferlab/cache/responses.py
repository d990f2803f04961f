"""The cache step of the request path: lookup before routing, store after a complete success.

Wraps a ``CacheManager`` so that it can never fail or slow a request: every call is bounded by
``timeout_s``, and an error or a timeout is a miss (logged once per outage, counted in metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from inferlab.cache.keys import cache_key, is_cacheable
from inferlab.cache.protocol import CachedResponse, CacheManager


class ResponseCache:
    def __init__(
        self, manager: CacheManager, versions: Mapping[str, str], *,
        ttl_s: float, max_entry_bytes: int, timeout_s: float, errors: tuple[type[BaseException], ...] = (),
        logger: logging.Logger, on_result: Callable[[str], None] | None = None,
    ) -> None:
        self._manager = manager
        self._versions = versions
        self._ttl_s = ttl_s
        self.max_entry_bytes = max_entry_bytes
        self._timeout_s = timeout_s
        self._errors: tuple[type[BaseException], ...] = (TimeoutError, OSError, *errors)
        self._log = logger
        self._on_result = on_result or (lambda result: None)
        self._failing = False

    def key(self, tenant: str, mode: str, route: str, body: dict[str, Any], *, pool: str | None = None) -> str | None:
        """The request's cache key, or None when it is not cacheable (``mode``: the client's
        ``x-inferlab-cache`` choice: auto, use or bypass; ``pool``: the registry version's pool,
        which versions the key instead of the configured model's version)."""
        if not is_cacheable(body, None if mode == "auto" else mode):
            if mode == "bypass":
                self._on_result("bypass")
            return None
        model = body["model"]
        return cache_key(tenant, model, pool if pool is not None else self._versions.get(model, ""), route, body)

    async def get(self, key: str) -> CachedResponse | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._manager.get(key)
        except self._errors as exc:
            self._failed(exc)
            found = None
        else:
            self._recovered()
        self._on_result("hit" if found is not None else "miss")
        return found

    async def put(self, key: str, response: CachedResponse) -> None:
        if len(response.body) > self.max_entry_bytes:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._manager.put(key, response, self._ttl_s)
        except self._errors as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._on_result("error")
        if not self._failing:
            self._failing = True
            self._log.warning("response cache unavailable: serving without it", extra={"error": repr(exc)})

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            self._log.warning("response cache is back")

    async def aclose(self) -> None:
        await self._manager.aclose()
