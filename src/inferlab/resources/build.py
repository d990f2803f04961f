"""Build the resource service from the settings: each pool's capacity, the allocator, its store."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from inferlab.config import ModelConfig, PoolCapacitySettings, Settings
from inferlab.errors import InferLabError
from inferlab.metrics.tenants import TenantMetrics
from inferlab.resources.capacity import CapacityOverride, capacity_of, managed_llamacpp
from inferlab.resources.discovery import discover, discoverable
from inferlab.resources.memory import MemoryAllocator
from inferlab.resources.model import PoolCapacity
from inferlab.resources.protocol import ResourceAllocator
from inferlab.resources.report import HardwareOption, hardware_option
from inferlab.resources.reservations import ReservationStore
from inferlab.resources.service import ResourceService, TenantLister
from inferlab.tenants.directory import TenantDirectory


def pool_capacity(model: ModelConfig, configured: PoolCapacitySettings | None) -> PoolCapacity | None:
    """Managed llama.cpp: its replicas' slots × per-slot context; any engine: what is configured.
    None when neither says (the pool is then not allocated)."""
    override = CapacityOverride(configured.sequences, configured.kv_tokens) if configured is not None else None
    overcommit = configured.overcommit if configured is not None else 1.0
    if model.backend == "llamacpp":
        replicas = [managed_llamacpp(model.parallel, model.context_size)] * model.replicas
        return capacity_of(replicas, overcommit=overcommit, configured=override)
    if configured is not None and configured.sequences is not None and configured.kv_tokens is not None:
        return capacity_of([], overcommit=overcommit, configured=override)
    return None


def build_resources(settings: Settings, directory: TenantDirectory, *, redis: Any | None,
                    session: aiohttp.ClientSession | None = None,
                    tenant_store: TenantLister | None, logger: logging.Logger,
                    metrics: TenantMetrics | None = None, reservations: ReservationStore | None = None,
                    ) -> ResourceService:
    section = settings.resources
    capacities: dict[str, PoolCapacity] = {}
    reported = [m for m in settings.models if discoverable(m) and not _configured(section.pools.get(m.name))]
    for model in settings.models:
        capacity = pool_capacity(model, section.pools.get(model.name))
        if capacity is None and model in reported:
            continue  # read from its engines at start and at each refresh
        if capacity is None:
            logger.warning("pool capacity unknown: not allocated (set resources.pools.<model>.sequences and "
                           "kv_tokens)", extra={"model": model.name})
        else:
            capacities[model.name] = capacity
    allocator: ResourceAllocator
    if redis is not None:
        from inferlab.resources.redis import RedisAllocator

        allocator = RedisAllocator(redis, section.redis_prefix, lease_ttl_s=section.lease_ttl_s, logger=logger)
    else:
        allocator = MemoryAllocator(lease_ttl_s=section.lease_ttl_s)
    return ResourceService(allocator, capacities, directory, tenants=tenant_store, refresh_s=section.refresh_s,
                           lease_ttl_s=section.lease_ttl_s, logger=logger, metrics=metrics,
                           reservations=reservations,
                           discover=_discoverer(reported, section.pools, session, logger) if reported and session else None)


def _configured(pool: PoolCapacitySettings | None) -> bool:
    return pool is not None and pool.sequences is not None and pool.kv_tokens is not None


def _discoverer(models: list[ModelConfig], pools: dict[str, PoolCapacitySettings], session: aiohttp.ClientSession,
                logger: logging.Logger) -> Callable[[], Awaitable[dict[str, PoolCapacity]]]:
    async def run() -> dict[str, PoolCapacity]:
        found = {}
        for model in models:
            capacity = await discover(session, model, pools.get(model.name), logger)
            if capacity is not None:
                found[model.name] = capacity
        return found

    return run


def priced_options(settings: Settings, logger: logging.Logger) -> Callable[[str], list[HardwareOption]]:
    """Scaling options priced by the planning toolkit, for pools that name a catalogue model and
    accelerators (``resources.pools.<model>.plan_model`` / ``plan_hardware``); computed on first use."""
    found: dict[str, list[HardwareOption]] = {}

    def options(pool: str) -> list[HardwareOption]:
        if pool in found:
            return found[pool]
        section = settings.resources.pools.get(pool)
        model = settings.model(pool)
        result: list[HardwareOption] = []
        if section is not None and section.plan_model and model is not None:
            from inferlab.planning.catalogue import load_catalogue
            from inferlab.planning.deployment import resolve_deployment

            catalogue = load_catalogue()
            for gpu in section.plan_hardware:
                try:
                    deployment = resolve_deployment(catalogue, model=section.plan_model, gpu=gpu,
                                                    engine=section.plan_engine)
                    result.append(hardware_option(catalogue, deployment, context=model.context_size,
                                                  sequences=model.parallel))
                except (InferLabError, KeyError, ValueError) as exc:
                    logger.warning("scaling option not priced", extra={"pool": pool, "gpu": gpu, "error": str(exc)})
        found[pool] = result
        return result

    return options
