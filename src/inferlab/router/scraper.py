"""The load scraper: a background task that reads each engine's own load signals on an interval.

llama.cpp: ``/metrics`` and ``/slots``; vLLM, SGLang, TGI: ``/metrics``; Ollama: nothing (the
gateway's own in-flight count stands alone). The parsing is ``load.parse_load``; a replica whose
scrape fails keeps no stale figures (its load resets to unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from inferlab.router.load import UNKNOWN_LOAD, parse_load
from inferlab.router.pool import BackendPool
from inferlab.router.replica import Replica

_SCRAPED = frozenset({"llamacpp", "vllm", "sglang", "tgi", "generic"})


class LoadScraper:
    def __init__(self, pools: Sequence[BackendPool], session: aiohttp.ClientSession, *,
                 interval_s: float = 1.0, timeout_s: float = 1.0) -> None:
        self.pools = tuple(pools)
        self.interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._task: asyncio.Task[None] | None = None

    def add_pool(self, pool: BackendPool) -> None:
        """Scrape one more pool from now on (hot reload)."""
        self.pools = (*self.pools, pool)

    def remove_pool(self, pool: BackendPool) -> None:
        self.pools = tuple(p for p in self.pools if p is not pool)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="router-load-scraper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _targets(self) -> list[tuple[BackendPool, Replica]]:
        return [
            (pool, replica) for pool in self.pools for replica in pool.replicas
            if replica.endpoint.base_url and replica.endpoint.engine in _SCRAPED
        ]

    async def _run(self) -> None:
        while True:
            targets = [(pool, r) for pool, r in self._targets() if r.backend.is_available()]
            await asyncio.gather(*(self.scrape(pool, replica) for pool, replica in targets))
            await asyncio.sleep(self.interval_s)

    async def scrape(self, pool: BackendPool, replica: Replica) -> None:
        endpoint = replica.endpoint
        assert endpoint.base_url is not None
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else None
        metrics = await self._get(endpoint.base_url + "/metrics", headers)
        slots: Any = None
        if endpoint.engine == "llamacpp":
            raw = await self._get(endpoint.base_url + "/slots", headers)
            if raw is not None:
                with contextlib.suppress(orjson.JSONDecodeError):
                    slots = orjson.loads(raw)
        load = parse_load(metrics, slots, pool.clock())
        replica.load = load if load is not None else UNKNOWN_LOAD

    async def _get(self, url: str, headers: dict[str, str] | None) -> str | None:
        try:
            async with self._session.get(url, headers=headers, timeout=self._timeout) as response:
                if response.status != 200:
                    return None
                return await response.text()
        except (TimeoutError, aiohttp.ClientError):
            return None
