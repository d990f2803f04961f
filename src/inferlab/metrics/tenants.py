"""Per-tenant and per-tier metrics with bounded label cardinality.

The first ``top`` tenants seen get their own label; every later one is counted as ``other``
(``tenants.top_tenants_in_metrics``). Tiers are few by nature and always labelled.

    inferlab_tenant_requests_in_flight{tenant,tier}
    inferlab_tenant_requests_refused_total{tenant,tier,reason}   # tier, limit, quota, share refusals
    inferlab_tenant_kv_tokens_held{tenant,pool} / _borrowed / _sequences_held   # from the allocator's tick
    inferlab_tenant_tokens_total{tenant,direction}   # prompt|completion, from each usage event (metering)
    inferlab_tenant_cost_usd_total{tenant}           # the usage events' list price, USD
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from inferlab.metering.event import UsageEvent

OTHER = "other"


class TenantLabels:
    """A tenant's metric label: itself for the first ``top`` tenants seen, else ``other``."""

    def __init__(self, top: int) -> None:
        self._top = top
        self._named: set[str] = set()

    def __call__(self, tenant: str) -> str:
        if tenant in self._named:
            return tenant
        if len(self._named) < self._top:
            self._named.add(tenant)
            return tenant
        return OTHER


class TenantMetrics:
    def __init__(self, registry: CollectorRegistry, top: int) -> None:
        self.label = TenantLabels(top)
        self.in_flight = Gauge("inferlab_tenant_requests_in_flight", "Requests being served, per tenant and tier",
                               ["tenant", "tier"], registry=registry)
        self.refused = Counter("inferlab_tenant_requests_refused", "Requests refused, per tenant, tier and reason",
                               ["tenant", "tier", "reason"], registry=registry)
        self.kv_held = Gauge("inferlab_tenant_kv_tokens_held", "KV-cache tokens held, per tenant and pool",
                             ["tenant", "pool"], registry=registry)
        self.kv_borrowed = Gauge("inferlab_tenant_kv_tokens_borrowed", "KV tokens held above the guarantee",
                                 ["tenant", "pool"], registry=registry)
        self.sequences_held = Gauge("inferlab_tenant_sequences_held", "Sequences held, per tenant and pool",
                                    ["tenant", "pool"], registry=registry)

        self.tokens = Counter("inferlab_tenant_tokens", "Tokens metered, per tenant and direction (prompt|completion)",
                              ["tenant", "direction"], registry=registry)
        self.cost = Counter("inferlab_tenant_cost_usd", "List price of the metered usage, per tenant, USD",
                            ["tenant"], registry=registry)
        self._usage_children: dict[str, tuple[Counter, Counter, Counter]] = {}

    # UsageObserver (inferlab.metering): one call per usage event, on the request path — cached children
    def usage_recorded(self, event: UsageEvent) -> None:
        label = self.label(event.tenant or "none")
        children = self._usage_children.get(label)
        if children is None:
            children = (self.tokens.labels(label, "prompt"), self.tokens.labels(label, "completion"),
                        self.cost.labels(label))
            self._usage_children[label] = children
        if event.prompt_tokens:
            children[0].inc(event.prompt_tokens)
        if event.completion_tokens:
            children[1].inc(event.completion_tokens)
        if event.price:
            children[2].inc(float(event.price))

    def refusal(self, tenant: str, tier: str, reason: str) -> None:
        self.refused.labels(self.label(tenant), tier, reason).inc()

    def held(self, pool: str, tenant: str, sequences: int, kv_tokens: int, borrowed_kv_tokens: int) -> None:
        label = self.label(tenant)
        self.sequences_held.labels(label, pool).set(sequences)
        self.kv_held.labels(label, pool).set(kv_tokens)
        self.kv_borrowed.labels(label, pool).set(borrowed_kv_tokens)
