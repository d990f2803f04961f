"""The registry from its settings (called by the composition root when ``features.registry``)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from inferlab.config import PricingSettings, Settings
from inferlab.registry.reload import BuildPools, ServedVersions
from inferlab.registry.resolve import Resolver
from inferlab.registry.seed import seed_of
from inferlab.registry.service import RegistryService
from inferlab.registry.stats import VariantObserver, VariantStats
from inferlab.registry.step import Price, ResolveVersion
from inferlab.router import HealthMonitor, LoadScraper, ModelRouter
from inferlab.scheduler.queue import WaitQueues
from inferlab.store.engine import Database


@dataclass
class Registry:
    service: RegistryService
    step: ResolveVersion


def list_price(pricing: PricingSettings) -> Price:
    """A variant's cost at the list prices (USD per million tokens)."""
    def price(model: str, prompt: int, completion: int) -> float:
        found = pricing.models.get(model, pricing.default)
        return float(prompt * found.input_per_million + completion * found.output_per_million) / 1e6

    return price


def build_registry(settings: Settings, database: Database, router: ModelRouter, build: BuildPools, *,
                   health: HealthMonitor, scraper: LoadScraper, queues: WaitQueues,
                   observer: VariantObserver | None, logger: logging.Logger) -> Registry:
    from inferlab.auth.stack import migrate_or_check
    from inferlab.store.registry import SqlRegistryStore

    config = settings.registry
    seed = seed_of(settings.models, config)
    resolver = Resolver(router, fallbacks=config.fallbacks, static=seed.static)
    served = ServedVersions(resolver, router, build, health=health, scraper=scraper, queues=queues,
                            static=set(seed.static), start_timeout_s=config.start_timeout_s,
                            drain_s=config.judge.drain_s, logger=logger)
    stats = VariantStats(observer)
    store = SqlRegistryStore(database)

    async def prepare() -> None:
        await migrate_or_check(database, settings.auth.auto_migrate)

    service = RegistryService(store, resolver, served, stats, config, seed, gateway="gw-" + secrets.token_hex(6),
                              logger=logger, prepare=prepare)
    return Registry(service, ResolveVersion(resolver, stats, list_price(settings.pricing)))
