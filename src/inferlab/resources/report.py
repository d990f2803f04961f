"""What each tenant was guaranteed, used, borrowed and was refused, over time; and what to add when
the guarantees exceed the pool.

:class:`UsageHistory` keeps a bounded ring of samples per pool, one per ``sample`` call (the
composition root schedules it, e.g. every 10 s). :func:`pool_report` turns the current usage and
the samples into figures per tenant; :func:`scaling_advice` says how many replicas of each
hardware option would cover the guarantees, priced with the planning toolkit's rental costs.
All pure, but ``UsageHistory.sample``, which asks the allocator.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.cost import RentalPlan, rented_monthly
from inferlab.planning.deployment import Deployment
from inferlab.planning.memory import estimate_memory, max_batch
from inferlab.resources.capacity import ReplicaCapacity
from inferlab.resources.model import ZERO, Amount, PoolCapacity, PoolUsage
from inferlab.resources.protocol import ResourceAllocator


@dataclass(frozen=True, slots=True)
class UsageSample:
    at: datetime
    effective: Amount
    in_flight: Amount
    committed: Amount
    held: Mapping[str, Amount]  # per tenant holding something


class UsageHistory:
    """The last ``max_samples`` samples of each pool (1,440: a day at one a minute)."""

    def __init__(self, max_samples: int = 1440) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self._max = max_samples
        self._samples: dict[str, deque[UsageSample]] = {}

    def record(self, usage: PoolUsage, at: datetime) -> UsageSample:
        sample = UsageSample(at, usage.effective, usage.in_flight, usage.committed,
                             {t.tenant: t.held for t in usage.tenants if t.held})
        self._samples.setdefault(usage.pool, deque(maxlen=self._max)).append(sample)
        return sample

    def samples(self, pool: str) -> tuple[UsageSample, ...]:
        return tuple(self._samples.get(pool, ()))

    async def sample(self, allocator: ResourceAllocator, pools: Iterable[str], at: datetime) -> None:
        """One tick of the sampler: every pool's usage now."""
        for pool in pools:
            usage = await allocator.usage(pool)
            if usage is not None:
                self.record(usage, at)


@dataclass(frozen=True, slots=True)
class Utilisation:
    """Mean and peak over samples; ``mean_*`` as fractions of a reference amount (None: no reference)."""

    mean: tuple[float, float]  # sequences, KV tokens
    peak: Amount
    mean_fraction: tuple[float | None, float | None] = (None, None)


def utilisation(values: Sequence[Amount], reference: Sequence[Amount]) -> Utilisation:
    """Mean and peak of ``values``; the mean fraction of each value over its ``reference`` (same length)."""
    if not values:
        return Utilisation((0.0, 0.0), ZERO)
    count = len(values)
    peak = ZERO
    for value in values:
        peak = peak.at_least(value)
    fractions: list[float | None] = []
    for dim in ("sequences", "kv_tokens"):
        pairs = [(getattr(v, dim), getattr(r, dim)) for v, r in zip(values, reference, strict=True)]
        fractions.append(sum(v / r for v, r in pairs) / count if all(r > 0 for _, r in pairs) else None)
    return Utilisation((sum(v.sequences for v in values) / count, sum(v.kv_tokens for v in values) / count), peak,
                       (fractions[0], fractions[1]))


@dataclass(frozen=True, slots=True)
class TenantReport:
    tenant: str
    guaranteed: Amount
    limit: Amount | None
    used: Amount  # held now
    borrowed: Amount  # held now above the guarantee
    admitted: int
    refused: Mapping[str, int]
    expired: int
    over_time: Utilisation  # held over the samples; fractions of the guarantee


@dataclass(frozen=True, slots=True)
class PoolReport:
    pool: str
    capacity: PoolCapacity
    guaranteed: Amount
    overbooked: Amount  # guarantees above the effective capacity
    in_flight: Amount
    over_time: Utilisation  # in flight over the samples; fractions of the effective capacity
    samples: int
    tenants: tuple[TenantReport, ...] = field(default_factory=tuple)


def pool_report(usage: PoolUsage, samples: Sequence[UsageSample]) -> PoolReport:
    tenants = []
    for tenant in usage.tenants:
        held = [s.held.get(tenant.tenant, ZERO) for s in samples]
        tenants.append(TenantReport(
            tenant.tenant, tenant.share.guarantee, tenant.share.limit, tenant.held, tenant.borrowed, tenant.admitted,
            dict(tenant.refused), tenant.expired, utilisation(held, [tenant.share.guarantee] * len(held)),
        ))
    pool_over_time = utilisation([s.in_flight for s in samples], [s.effective for s in samples])
    return PoolReport(usage.pool, usage.config.capacity, usage.config.guaranteed, usage.config.overbooked,
                      usage.in_flight, pool_over_time, len(samples), tuple(tenants))


@dataclass(frozen=True, slots=True)
class HardwareOption:
    """One replica of a kind the pool could add: what it holds and what it costs an hour (None: unknown)."""

    label: str
    per_replica: ReplicaCapacity
    usd_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class ScalingOption:
    hardware: HardwareOption
    replicas: int  # more replicas of this kind
    usd_per_hour: float | None  # for all of them
    usd_per_month: float | None  # rented around the clock (planning.cost.rented_monthly)


@dataclass(frozen=True, slots=True)
class ScalingAdvice:
    pool: str
    shortfall: Amount  # guarantees above the effective capacity
    options: tuple[ScalingOption, ...]  # cheapest first, unpriced after; kinds that cannot cover it left out
    unfit: tuple[str, ...] = ()  # options that can never cover it (a dimension they do not add)

    @property
    def best(self) -> ScalingOption | None:
        return self.options[0] if self.options else None


def replicas_needed(needed: Amount, capacity: PoolCapacity, per_replica: ReplicaCapacity) -> int | None:
    """Fewest replicas to add so that floor((capacity + n x per replica) x overcommit) ≥ needed."""
    count = 0
    for have, add, want in ((capacity.sequences, per_replica.sequences, needed.sequences),
                            (capacity.kv_tokens, per_replica.kv_tokens, needed.kv_tokens)):
        if math.floor(have * capacity.overcommit) >= want:
            continue
        if add <= 0:
            return None
        n = max(0, math.ceil((want / capacity.overcommit - have) / add))
        while math.floor((have + n * add) * capacity.overcommit) < want:
            n += 1
        count = max(count, n)
    return count


def scaling_advice(pool: str, guaranteed: Amount, capacity: PoolCapacity,
                   options: Sequence[HardwareOption]) -> ScalingAdvice | None:
    """None while the guarantees fit; else the replicas each option needs, and their rent."""
    shortfall = guaranteed.minus(capacity.effective)
    if not shortfall:
        return None
    priced, unpriced, unfit = [], [], []
    for option in options:
        count = replicas_needed(guaranteed, capacity, option.per_replica)
        if count is None:
            unfit.append(option.label)
            continue
        if option.usd_per_hour is None:
            unpriced.append(ScalingOption(option, count, None, None))
            continue
        hourly = count * option.usd_per_hour
        priced.append(ScalingOption(option, count, hourly, rented_monthly(RentalPlan(hourly), 1.0).total))
    priced.sort(key=lambda o: (o.usd_per_hour or 0.0, o.replicas))
    return ScalingAdvice(pool, shortfall, tuple(priced + unpriced), tuple(unfit))


def hardware_option(catalogue: Catalogue, deployment: Deployment, *, context: int, sequences: int) -> HardwareOption:
    """A replica of ``deployment`` (model, accelerator, engine) from the planning toolkit.

    llama.cpp-style engines hold ``sequences`` slots of ``context`` tokens, as many as fit in memory;
    pool engines (vLLM, SGLang…) hold ``sequences`` at once over the KV pool left after the weights.
    Priced at the accelerator's on-demand rent times its devices (None when the catalogue has none)."""
    if deployment.engine.pool_mode == "none":
        slots = min(sequences, max_batch(catalogue, deployment, context).value)
        per_replica = ReplicaCapacity(slots, slots * context)
    else:
        estimate = estimate_memory(catalogue, deployment, context)
        tokens = int(estimate.kv_pool // estimate.kv_bytes_per_token) if estimate.kv_bytes_per_token else 0
        per_replica = ReplicaCapacity(sequences if tokens >= context else 0, tokens)
    price = deployment.accelerator.rental()
    usd = price.usd_per_hour * deployment.devices if price is not None else None
    return HardwareOption(deployment.label(), per_replica, usd)
