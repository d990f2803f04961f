"""``TenantDirectory`` over the real SQL store (SQLite): resolution, the TTL cache and ``forget``, the
last record seen while the store is down, unknown tenants and deleted tiers, and requests in flight
interrupted when their tenant is suspended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inferlab.auth.model import Tenant
from inferlab.config.tenants import NamedTier
from inferlab.errors import InferLabError, ServiceUnavailable, StoreUnavailable
from inferlab.store import Database, SqlIdentityStore, database_url, upgrade
from inferlab.store.tiers import SqlTierStore
from inferlab.tenants.directory import TenantDirectory
from inferlab.tenants.tier import TierCatalogue

TTL_S = 5.0
NOW = datetime.now(UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Outage:
    """The real stores, counted, which raise ``StoreUnavailable`` while ``down``."""

    def __init__(self, tenants: SqlIdentityStore, tiers: SqlTierStore) -> None:
        self._tenants, self._tiers = tenants, tiers
        self.down = False
        self.tenant_reads = 0
        self.tier_reads = 0

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        if self.down:
            raise StoreUnavailable("the store does not answer", retry_after=1.0)
        self.tenant_reads += 1
        return await self._tenants.get_tenant(tenant_id)

    async def all_tiers(self) -> dict[str, dict[str, Any]]:
        if self.down:
            raise StoreUnavailable("the store does not answer", retry_after=1.0)
        self.tier_reads += 1
        return await self._tiers.all_tiers()


@dataclass
class World:
    tenants: SqlIdentityStore
    tiers: SqlTierStore
    store: Outage
    clock: Clock
    directory: TenantDirectory


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    database = Database(database_url(tmp_path, None))
    await upgrade(database)
    tenants, tiers = SqlIdentityStore(database), SqlTierStore(database)
    store, clock = Outage(tenants, tiers), Clock()
    catalogue = TierCatalogue([NamedTier(name="team", max_tokens=300)])
    directory = TenantDirectory(catalogue, "enterprise", tenants=store, tiers=store, ttl_s=TTL_S,
                                errors=(StoreUnavailable,), clock=clock)
    try:
        yield World(tenants, tiers, store, clock, directory)
    finally:
        await database.close()


async def test_a_tenant_is_read_once_per_ttl_and_forget_rereads_at_once(world: World) -> None:
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="free"))
    first = await world.directory.context("acme")
    assert first.active and first.tier.name == "free" and first.tier.spec.max_tokens == 512
    await world.tenants.update_tenant("acme", tier="pro")
    world.clock.now += TTL_S - 0.1
    assert (await world.directory.context("acme")).tier.name == "free"  # cached
    assert world.store.tenant_reads == 1
    world.directory.forget("acme")  # what the admin's replica does after a change
    assert (await world.directory.context("acme")).tier.name == "pro"
    await world.tenants.update_tenant("acme", tier="team")
    world.clock.now += TTL_S + 0.1  # another replica: within one TTL
    assert (await world.directory.context("acme")).tier.name == "team"
    assert world.store.tenant_reads == 3


async def test_a_stored_tier_change_reaches_cached_tenants_within_one_ttl(world: World) -> None:
    for tenant in ("a", "b"):
        await world.tenants.add_tenant(Tenant(tenant, tenant, NOW, tier="team"))
    await world.directory.context("a")  # t=0: the stored tiers are read
    world.clock.now += 4.0
    assert (await world.directory.context("b")).tier.spec.max_tokens == 300  # t=4: b cached, tiers not re-read
    await world.tiers.put_tier("team", {"max_tokens": 42}, NOW)  # t=4.5: another replica stores a change
    world.clock.now += 1.1  # t=5.1: one TTL after the tiers were read
    assert (await world.directory.context("b")).tier.spec.max_tokens == 42
    assert world.store.tier_reads == 2


async def test_the_last_record_seen_serves_while_the_store_is_down(world: World) -> None:
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="pro"))
    await world.tenants.add_tenant(Tenant("globex", "Globex", NOW, tier="pro", status="suspended"))
    assert (await world.directory.context("acme")).tier.name == "pro"
    assert not (await world.directory.context("globex")).active
    world.store.down = True
    world.clock.now += TTL_S * 3
    assert (await world.directory.context("acme")).tier.name == "pro"  # stale, not refused
    assert not (await world.directory.context("globex")).active  # a suspension is not lifted by an outage
    with pytest.raises(ServiceUnavailable) as raised:
        await world.directory.context("initech")  # never seen: not waved through
    assert raised.value.status == 503
    world.store.down = False
    await world.tenants.update_tenant("acme", tier="free")
    assert (await world.directory.context("acme")).tier.name == "free"


async def test_unknown_tenants_and_tenants_without_a_tier_are_on_the_default_tier(world: World) -> None:
    unknown = await world.directory.context("never-stored")
    assert unknown.active and unknown.tier.name == "enterprise"
    await world.tenants.add_tenant(Tenant("plain", "Plain", NOW))
    assert (await world.directory.context("plain")).tier.name == "enterprise"
    assert world.directory.default.tenant_id == "default" and world.directory.default.tier.name == "enterprise"


async def test_a_tenant_on_a_deleted_tier_falls_back_to_the_default_tier(world: World,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    await world.tiers.put_tier("gold", {"max_tokens": 9, "priority": "critical"}, NOW)
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="gold", overrides={"max_tokens": 5}))
    gold = (await world.directory.context("acme")).tier
    assert gold.name == "gold" and gold.spec.max_tokens == 5 and gold.spec.priority == "critical"
    await world.tiers.delete_tier("gold")
    world.directory.forget()
    fallen = (await world.directory.context("acme")).tier
    assert fallen.name == "enterprise" and fallen.spec.max_tokens == 5  # its own overrides still apply
    assert "tenant on a tier that does not exist" in caplog.text


async def test_an_invalid_stored_tier_is_ignored(world: World, caplog: pytest.LogCaptureFixture) -> None:
    await world.tiers.put_tier("team", {"max_tokens": -1}, NOW)  # written behind the admin API's back
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="team"))
    assert (await world.directory.context("acme")).tier.spec.max_tokens == 300  # the configured one
    assert "stored tier is not valid" in caplog.text


async def test_an_unknown_default_tier_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=r"tenants\.default_tier 'gold' is not a tier"):
        TenantDirectory(TierCatalogue(), "gold")


async def test_suspending_a_tenant_interrupts_its_requests_in_flight(world: World) -> None:
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW))
    await world.tenants.add_tenant(Tenant("globex", "Globex", NOW))
    interrupted: list[tuple[str, InferLabError]] = []
    stop_one = world.directory.watch("acme", lambda error: interrupted.append(("acme-1", error)))
    world.directory.watch("acme", lambda error: interrupted.append(("acme-2", error)))
    world.directory.watch("globex", lambda error: interrupted.append(("globex", error)))
    assert world.directory.running("acme") == 2
    stop_one(None)
    assert world.directory.running("acme") == 1

    await world.directory.sweep()  # every tenant active: nothing happens
    assert interrupted == []
    await world.tenants.update_tenant("acme", status="suspended")
    await world.directory.sweep()  # what each replica does once per TTL
    assert [(who, error.status, error.code) for who, error in interrupted] == [("acme-2", 403, "tenant_suspended")]
    await world.tenants.update_tenant("globex", status="deleted")
    world.directory.forget("globex")
    await world.directory.context("globex")  # the replica that made the change: at once
    assert interrupted[-1][0] == "globex" and interrupted[-1][1].code == "tenant_deleted"


async def test_a_compiled_tier_is_kept_until_the_stored_tiers_change(world: World) -> None:
    """Steps cache what they derive from a tier per compiled tier: re-reading unchanged tiers every
    TTL must not make new ones (nor grow those caches)."""
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="team", overrides={"max_tokens": 7}))
    first = (await world.directory.context("acme")).tier
    for _ in range(3):
        world.clock.now += TTL_S + 0.1
        assert (await world.directory.context("acme")).tier is first
    assert world.store.tier_reads == 4
    await world.tiers.put_tier("team", {"max_tokens": 9, "priority": "high"}, NOW)
    world.clock.now += TTL_S + 0.1
    changed = (await world.directory.context("acme")).tier
    assert changed is not first and changed.spec.priority == "high" and changed.spec.max_tokens == 7


async def test_a_sweep_during_an_outage_keeps_the_last_record_seen(world: World) -> None:
    await world.tenants.add_tenant(Tenant("acme", "Acme", NOW, tier="pro"))
    assert (await world.directory.context("acme")).tier.name == "pro"
    world.directory.watch("acme", lambda error: None)  # a request in flight: the sweep re-reads acme
    world.store.down = True
    await world.directory.sweep()  # the re-read fails: not an error, and not a reason to forget acme
    assert (await world.directory.context("acme")).tier.name == "pro"  # the next request is still served
    reads = world.store.tenant_reads
    world.store.down = False
    await world.directory.context("acme")  # expired by the sweep: read again once the store is back
    assert world.store.tenant_reads == reads + 1
