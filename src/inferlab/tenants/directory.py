"""Tenant resolution: tenant id → its status and its tier (with its overrides), once per request,
from an in-process cache.

A tenant's record is cached for ``ttl_s`` (the key cache's TTL), and the stored tiers are re-read
as often, so a change made on one gateway replica reaches every other within that time; on the
replica that made it, at once (``forget``). While the store does not answer, the last record seen
is used; a tenant never seen then fails the request (503), it is not waved through.

Requests in flight are watched (``watch``): when a tenant is found suspended or deleted — by an
admin on this replica, or by ``sweep`` re-reading the tenants with running requests — each of its
running requests is interrupted (a stream ends with one error event).

A tenant id with no record (a JWT naming a tenant the store does not hold; every caller when
authentication is off) is an active tenant on the default tier.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from inferlab.auth.model import Tenant, TenantStatus
from inferlab.config.tenants import TierSpec
from inferlab.errors import InferLabError, PermissionDenied, ServiceUnavailable, StoreUnavailable
from inferlab.tenants.tier import Tier, TierCatalogue, with_overrides

Interrupt = Callable[[InferLabError], None]


class TenantReader(Protocol):
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...


class TierReader(Protocol):
    async def all_tiers(self) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: str
    status: TenantStatus
    tier: Tier

    @property
    def active(self) -> bool:
        return self.status == "active"


def refusal(context: TenantContext) -> PermissionDenied:
    """What a request of a tenant that is not active gets."""
    if context.status == "suspended":
        return PermissionDenied(f"Tenant '{context.tenant_id}' is suspended", code="tenant_suspended")
    return PermissionDenied(f"Tenant '{context.tenant_id}' is closed", code="tenant_deleted")


class TenantDirectory:
    def __init__(
        self, catalogue: TierCatalogue, default_tier: str, *, tenants: TenantReader | None = None,
        tiers: TierReader | None = None, ttl_s: float = 5.0, errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
    ) -> None:
        if catalogue.get(default_tier) is None:
            raise ValueError(f"tenants.default_tier {default_tier!r} is not a tier ({', '.join(catalogue.names())})")
        self.catalogue = catalogue
        self.default_tier = default_tier
        self._tenants = tenants
        self._tiers = tiers
        self._ttl_s = ttl_s
        self._errors = errors
        self._clock = clock
        self._log = logger or logging.getLogger("inferlab.tenants")
        self._cache: dict[str, tuple[float, TenantContext]] = {}
        self._compiled: dict[tuple[str, bytes], Tier] = {}
        self._stored: dict[str, TierSpec] = {}
        self._tiers_read_at: float | None = None
        self._watchers: dict[str, dict[int, Interrupt]] = {}
        self._ids = itertools.count()
        self.default = TenantContext("default", "active", self.tier(default_tier, None))

    # ---- resolution ---------------------------------------------------------------------------
    def cached(self, tenant_id: str) -> TenantContext | None:
        """The tenant's context while its cached record is fresh (no await on the usual path)."""
        cached = self._cache.get(tenant_id)
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    async def context(self, tenant_id: str) -> TenantContext:
        """The tenant's status and tier, cached for ``ttl_s``."""
        now = self._clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._tenants is None:
            return self.default if tenant_id == "default" else TenantContext(tenant_id, "active", self.default.tier)
        try:
            await self._refresh_tiers(now)
            record = await self._tenants.get_tenant(tenant_id)
        except self._errors as exc:
            if cached is not None:
                return cached[1]  # the last one seen, rather than failing every request of the tenant
            self._log.warning("tenant store unavailable", extra={"tenant": tenant_id, "error": type(exc).__name__})
            raise StoreUnavailable("The tenant store is unavailable; try again shortly", retry_after=2) from None
        context = self._context_of(tenant_id, record)
        # the record is as fresh as the stored tiers it was compiled with: it expires with them, so a
        # changed tier reaches every replica within one TTL (not two)
        read_at = now if self._tiers_read_at is None else min(now, self._tiers_read_at)
        self._cache[tenant_id] = (read_at + self._ttl_s, context)
        if not context.active:
            self._interrupt(context)
        return context

    def _context_of(self, tenant_id: str, record: Tenant | None) -> TenantContext:
        if record is None:
            return TenantContext(tenant_id, "active", self.default.tier)
        return TenantContext(tenant_id, record.status, self.tier(record.tier or self.default_tier, record.overrides))

    def tier(self, name: str, overrides: Mapping[str, Any] | None) -> Tier:
        """The named tier with overrides applied, compiled once per distinct pair. A tier that no
        longer exists (deleted while tenants were on it) falls back to the default tier."""
        key = (name, orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS) if overrides else b"")
        compiled = self._compiled.get(key)
        if compiled is None:
            spec = self.catalogue.get(name)
            if spec is None:
                self._log.warning("tenant on a tier that does not exist", extra={"tier": name})
                name, spec = self.default_tier, self.catalogue.get(self.default_tier) or TierSpec()
            compiled = self._compiled[key] = Tier.of(name, with_overrides(spec, overrides))
        return compiled

    async def refresh_tiers(self) -> None:
        """Re-read the stored tiers now (an admin is about to read or change them)."""
        if self._tiers is not None:
            self._tiers_read_at = None
            await self._refresh_tiers(self._clock())

    async def _refresh_tiers(self, now: float) -> None:
        if self._tiers is None or (self._tiers_read_at is not None and now - self._tiers_read_at < self._ttl_s):
            return
        stored = await self._tiers.all_tiers()
        specs = {}
        for name, spec in stored.items():
            try:
                specs[name] = TierSpec.model_validate(spec)
            except ValueError:
                self._log.warning("stored tier is not valid: ignored", extra={"tier": name})
        if specs != self._stored:  # recompile only on a change: a compiled tier keeps its identity
            self.catalogue.use_stored(specs)  # (later steps cache what they derive from it per tier)
            self._compiled.clear()
            self._stored = specs
        self._tiers_read_at = now

    def forget(self, tenant_id: str | None = None) -> None:
        """Drop cached records (one tenant, or all and the stored tiers): the next request re-reads."""
        if tenant_id is None:
            self._cache.clear()
            self._tiers_read_at = None
        else:
            self._cache.pop(tenant_id, None)

    # ---- requests in flight -------------------------------------------------------------------
    def watch(self, tenant_id: str, interrupt: Interrupt) -> Callable[[object], None]:
        """Call ``interrupt`` if the tenant is found suspended or deleted while the request runs;
        the returned function (a call clean-up) stops watching."""
        watchers = self._watchers.setdefault(tenant_id, {})
        token = next(self._ids)
        watchers[token] = interrupt

        def unwatch(_: object) -> None:
            found = self._watchers.get(tenant_id)
            if found is not None:
                found.pop(token, None)
                if not found:
                    del self._watchers[tenant_id]

        return unwatch

    def running(self, tenant_id: str) -> int:
        return len(self._watchers.get(tenant_id, ()))

    def _interrupt(self, context: TenantContext) -> None:
        for interrupt in list(self._watchers.get(context.tenant_id, {}).values()):
            interrupt(refusal(context))

    async def sweep(self) -> None:
        """Re-read every tenant with requests in flight (and interrupt those no longer active). The
        cached record is expired, not dropped: while the store is down it is still the last one
        seen, which the tenant's next requests are served with."""
        for tenant_id in list(self._watchers):
            cached = self._cache.get(tenant_id)
            if cached is not None:
                self._cache[tenant_id] = (float("-inf"), cached[1])
            try:
                await self.context(tenant_id)
            except ServiceUnavailable:
                continue

    async def keep_sweeping(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next one
                self._log.exception("tenant sweep failed")
