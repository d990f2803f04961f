"""A ``RegistryService`` over a SQLite store with two versions of model ``m`` (v1 stable, v2),
pools built but not started (no I/O): what the judgement tests drive on an accelerated clock."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from inferlab.backends.engine_client import EngineClient
from inferlab.config import EngineSettings, ModelConfig, RegistrySettings
from inferlab.coordinator.replicas import Replicas, build_replicas
from inferlab.registry.admin import RegistryAdmin
from inferlab.registry.model import ModelVersion
from inferlab.registry.reload import ServedVersions
from inferlab.registry.resolve import Resolver
from inferlab.registry.seed import Seed
from inferlab.registry.service import RegistryService
from inferlab.registry.stats import VariantStats
from inferlab.router import HealthMonitor, LoadScraper, ModelRouter
from inferlab.scheduler.queue import WaitQueues
from inferlab.store import Database, upgrade
from inferlab.store.registry import SqlRegistryStore

SPEC = {"backend": "openai", "url": "http://127.0.0.1:9/v1", "engine": "vllm"}


class Harness(RegistryService):
    admin: RegistryAdmin


@contextlib.asynccontextmanager
async def registry_service(tmp_path: Path, settings: RegistrySettings) -> AsyncIterator[Harness]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    await upgrade(database)
    store = SqlRegistryStore(database)
    router = ModelRouter([])
    resolver = Resolver(router)
    session = aiohttp.ClientSession()
    client = EngineClient(max_connections=4, connect_timeout_s=1, read_timeout_s=1)

    def build(config: ModelConfig) -> Replicas:
        return build_replicas([config], EngineSettings(), session, client=client, max_line_bytes=1 << 20,
                              logger=logging.getLogger("test.registry"))

    served = ServedVersions(resolver, router, build, health=HealthMonitor([]), scraper=LoadScraper([], session),
                            queues=WaitQueues(), static=set(), start_timeout_s=1, drain_s=0,
                            logger=logging.getLogger("test.registry"))
    seed = Seed([ModelVersion("m", "v1", SPEC), ModelVersion("m", "v2", {**SPEC, "url": "http://127.0.0.1:10/v1"})],
                {("m", "stable"): "v1"}, {})
    service = Harness(store, resolver, served, VariantStats(), settings, seed, gateway="gw-test",
                      logger=logging.getLogger("test.registry"))
    service.admin = RegistryAdmin(store, stats=service.stats, changed=service.refresh)
    try:
        async with service.preparing(), service.running():
            yield service
    finally:
        await session.close()
        await client.close()
        await database.close()
