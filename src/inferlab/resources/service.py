"""The allocator as the gateway runs it: pools' capacities, tenants' shares kept current,
grants renewed, utilisation sampled, reservations applied.

Every ``refresh_s`` (and at start) each allocated pool is configured from the tenants' tiers
(``shares.pool_config``) raised by the reservations active now (``ReservationBook``); the same
tick renews this process's grants and samples utilisation for ``/admin/resources``.
Reservations live in the SQL store when authentication is on (``store/reservations.py``: shared
by the replicas, kept across restarts), else in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from inferlab.auth.model import Tenant
from inferlab.config.tenants import ResourceShareSpec
from inferlab.metrics.tenants import TenantMetrics
from inferlab.resources.leases import GrantLeases
from inferlab.resources.model import Amount, PoolCapacity, PoolConfig, PoolUsage
from inferlab.resources.protocol import ResourceAllocator
from inferlab.resources.report import UsageHistory
from inferlab.resources.reservations import (
    MemoryReservationStore,
    Reservation,
    ReservationBook,
    ReservationStore,
)
from inferlab.resources.shares import pool_config
from inferlab.tenants.directory import TenantDirectory


class TenantLister(Protocol):
    async def list_tenants(self, *, limit: int, after: str | None) -> Sequence[Tenant]: ...


class ResourceService:
    def __init__(
        self, allocator: ResourceAllocator, capacities: Mapping[str, PoolCapacity], directory: TenantDirectory, *,
        tenants: TenantLister | None = None, refresh_s: float = 10.0, lease_ttl_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), logger: logging.Logger | None = None,
        metrics: TenantMetrics | None = None, reservations: ReservationStore | None = None,
        discover: Callable[[], Awaitable[dict[str, PoolCapacity]]] | None = None,
    ) -> None:
        self._discover = discover
        self._metrics = metrics
        self.allocator = allocator
        self.leases = GrantLeases(allocator, logger)
        self.capacities = dict(capacities)
        self.reservations = ReservationBook(reservations or MemoryReservationStore())
        self.history = UsageHistory()
        self._directory = directory
        self._tenants = tenants
        self._refresh_s = refresh_s
        self._renew_s = lease_ttl_s / 3
        self._clock = clock
        self._log = logger or logging.getLogger("inferlab.resources")
        self._configs: dict[str, PoolConfig] = {}

    @property
    def pools(self) -> list[str]:
        return sorted(self.capacities)

    async def _tenant_shares(self, pool: str) -> list[tuple[str, ResourceShareSpec]]:
        shares: list[tuple[str, ResourceShareSpec]] = []
        if self._tenants is None:
            return [("default", self._directory.default.tier.share_of(pool))]
        after: str | None = None
        while batch := await self._tenants.list_tenants(limit=500, after=after):
            for tenant in batch:
                if tenant.status == "active":
                    tier = self._directory.tier(tenant.tier or self._directory.default_tier, tenant.overrides)
                    shares.append((tenant.id, tier.share_of(pool)))
            after = batch[-1].id
        return shares

    async def base_config(self, pool: str) -> PoolConfig:
        """The pool's terms from the tiers alone (before reservations)."""
        await self._directory.refresh_tiers()
        default = self._directory.default.tier.share_of(pool)
        return pool_config(self.capacities[pool], default, await self._tenant_shares(pool))

    async def refresh(self) -> None:
        """Configure every pool from the tiers and the reservations in force now (and learn the
        capacity of pools whose engines report it)."""
        if self._discover is not None:
            self.capacities.update(await self._discover())
        now = self._clock()
        for pool in self.pools:
            config = await self.reservations.config_at(pool, await self.base_config(pool), now)
            if self._configs.get(pool) != config:
                await self.allocator.configure(pool, config)
                self._configs[pool] = config
                if config.overbooked:
                    self._log.warning("pool guarantees exceed its capacity",
                                      extra={"pool": pool, "overbooked": str(config.overbooked)})
        for pool, usage in (await self.usage()).items():  # one read per pool: the history and the metrics
            self.history.record(usage, now)
            if self._metrics is not None:
                for tenant in usage.tenants:
                    self._metrics.held(pool, tenant.tenant, tenant.held.sequences, tenant.held.kv_tokens,
                                       tenant.borrowed.kv_tokens)

    async def book(self, tenant: str, pool: str, amount: Amount, start: datetime, end: datetime) -> Reservation:
        reservation = await self.reservations.add(Reservation(tenant, pool, amount, start, end),
                                                  await self.base_config(pool))
        await self.refresh()
        return reservation

    async def cancel(self, reservation_id: str) -> Reservation | None:
        cancelled = await self.reservations.cancel(reservation_id)
        if cancelled is not None:
            await self.refresh()
        return cancelled

    async def usage(self) -> dict[str, PoolUsage]:
        found = {}
        for pool in self.pools:
            usage = await self.allocator.usage(pool)
            if usage is not None:
                found[pool] = usage
        return found

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - e.g. Redis down at start: serve (503 on allocated pools) and retry
            self._log.warning("configuring the pools failed; retried every refresh_s", exc_info=True)
        tasks = [asyncio.get_running_loop().create_task(loop()) for loop in (self._keep_fresh, self._keep_leases)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.allocator.aclose()

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - the next tick tries again; the last terms stay in force
                self._log.warning("refreshing pool shares failed", exc_info=True)

    async def _keep_leases(self) -> None:
        await self.leases.keep(self._renew_s)


def usage_json(usage: PoolUsage, history: UsageHistory) -> dict[str, Any]:
    """A pool's figures as ``/admin/resources`` shows them."""
    config = usage.config
    effective = config.capacity.effective

    def amount(value: Amount | None) -> dict[str, int] | None:
        return None if value is None else {"sequences": value.sequences, "kv_tokens": value.kv_tokens}

    samples = history.samples(usage.pool)
    return {
        "pool": usage.pool,
        "capacity": amount(effective), "overcommit": config.capacity.overcommit,
        "guaranteed": amount(config.guaranteed), "overbooked": amount(config.overbooked),
        "in_flight": amount(usage.in_flight), "committed": amount(usage.committed),
        "tenants": [
            {"tenant": t.tenant, "guarantee": amount(t.share.guarantee), "limit": amount(t.share.limit),
             "may_borrow": t.share.may_borrow, "held": amount(t.held), "borrowed": amount(t.borrowed),
             "grants": t.grants, "admitted": t.admitted, "expired": t.expired, "refused": dict(t.refused)}
            for t in usage.tenants
        ],
        "utilisation": [
            {"at": s.at.isoformat(), "sequences": s.in_flight.sequences, "kv_tokens": s.in_flight.kv_tokens}
            for s in samples[-60:]
        ],
    }
