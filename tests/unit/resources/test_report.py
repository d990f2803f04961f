"""The usage report over time and the scaling advice when guarantees exceed the pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inferlab.planning import load_catalogue, resolve_deployment
from inferlab.resources import (
    Amount,
    HardwareOption,
    MemoryAllocator,
    PoolCapacity,
    PoolConfig,
    ReplicaCapacity,
    TenantShare,
    UsageHistory,
    hardware_option,
    pool_report,
    scaling_advice,
)
from inferlab.resources.report import replicas_needed

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CONFIG = PoolConfig(PoolCapacity(8, 8000), {"gold": TenantShare(Amount(4, 4000))}, TenantShare(limit=Amount(6, 6000)))


async def test_samples_over_time_give_each_tenants_utilisation() -> None:
    allocator, history = MemoryAllocator(), UsageHistory(max_samples=3)
    await allocator.configure("p", CONFIG)
    grants = []
    for tick in range(4):  # gold holds 0, 1, 2, 3 sequences of 1000 tokens; bronze 1 throughout after tick 0
        if tick:
            grants.append(await allocator.try_admit("p", "gold", 1000, f"g{tick}"))
        if tick == 1:
            await allocator.try_admit("p", "bronze", 500, "b")
        await history.sample(allocator, ["p", "missing"], T0 + timedelta(minutes=tick))
    await allocator.try_admit("p", "bronze", 99_999, "too-big")
    samples = history.samples("p")
    assert [s.at for s in samples] == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]  # a ring of 3
    assert history.samples("missing") == ()
    usage = await allocator.usage("p")
    assert usage is not None
    report = pool_report(usage, samples)
    assert (report.samples, report.guaranteed, report.overbooked, report.in_flight) == (3, Amount(4, 4000), Amount(),
                                                                                       Amount(4, 3500))
    assert report.over_time.mean == (3.0, (1500 + 2500 + 3500) / 3) and report.over_time.peak == Amount(4, 3500)
    assert report.over_time.mean_fraction == (3 / 8, (1500 + 2500 + 3500) / 3 / 8000)
    bronze, gold = report.tenants  # by name
    assert (gold.tenant, gold.used, gold.borrowed, gold.admitted) == ("gold", Amount(3, 3000), Amount(), 3)
    assert gold.over_time.mean == (2.0, 2000.0) and gold.over_time.mean_fraction == (0.5, 0.5)
    assert (bronze.borrowed, bronze.refused, bronze.limit) == (Amount(1, 500), {"request_too_large": 1}, Amount(6, 6000))
    assert bronze.over_time.mean_fraction == (None, None)  # no guarantee to compare with


def test_no_advice_while_the_guarantees_fit() -> None:
    assert scaling_advice("p", Amount(8, 8000), PoolCapacity(8, 8000), []) is None


def test_advice_counts_replicas_per_option_and_prices_them_cheapest_first() -> None:
    llama = HardwareOption("llama.cpp on the CPU", ReplicaCapacity(4, 8192), None)
    small = HardwareOption("small GPU", ReplicaCapacity(64, 40_000), 0.78)
    big = HardwareOption("big GPU", ReplicaCapacity(256, 440_000), 2.69)
    embeddings = HardwareOption("no KV", ReplicaCapacity(8, 0), 0.1)
    advice = scaling_advice("p", Amount(20, 100_000), PoolCapacity(8, 16_384), [llama, big, small, embeddings])
    assert advice is not None and advice.shortfall == Amount(12, 83_616)
    assert [(o.hardware.label, o.replicas) for o in advice.options] == [
        ("small GPU", 3), ("big GPU", 1), ("llama.cpp on the CPU", 11)]
    assert advice.best is not None and advice.best.usd_per_hour == pytest.approx(3 * 0.78)
    assert advice.best.usd_per_month == pytest.approx(3 * 0.78 * 730)  # rented around the clock
    assert advice.options[-1].usd_per_hour is None and advice.unfit == ("no KV",)


def test_replicas_needed_accounts_for_the_overcommit_floor() -> None:
    assert replicas_needed(Amount(10, 0), PoolCapacity(4, 0, 1.5), ReplicaCapacity(1, 0)) == 3  # floor(7 x 1.5) = 10
    assert replicas_needed(Amount(6, 0), PoolCapacity(4, 0, 1.5), ReplicaCapacity(1, 0)) == 0
    assert replicas_needed(Amount(1, 1), PoolCapacity(0, 0), ReplicaCapacity(1, 0)) is None


def test_hardware_options_come_from_the_planning_toolkit() -> None:
    catalogue = load_catalogue()
    vllm = hardware_option(catalogue, resolve_deployment(catalogue, model="llama-3.1-8b", gpu="l4", engine="vllm"),
                           context=4096, sequences=64)
    llamacpp = hardware_option(catalogue, resolve_deployment(catalogue, model="llama-3.1-8b", gpu="rtx-4090"),
                               context=4096, sequences=64)
    # L4: 24 GB at 0.9 less 16 GB of BF16 weights and activations leaves ~5.5 GB: ~42k tokens of 128 KiB
    assert vllm.per_replica.sequences == 64 and 35_000 < vllm.per_replica.kv_tokens < 50_000
    assert vllm.usd_per_hour == catalogue.accelerator("l4").rental().usd_per_hour  # type: ignore[union-attr]
    # llama.cpp: as many 4096-token slots as fit next to the weights, never more than asked
    assert 0 < llamacpp.per_replica.sequences < 64
    assert llamacpp.per_replica.kv_tokens == llamacpp.per_replica.sequences * 4096
