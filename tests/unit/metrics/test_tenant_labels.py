"""Per-tenant metric labels stay bounded: the first N tenants seen by name, the rest as ``other``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferlab.metrics.tenants import OTHER, TenantLabels, TenantMetrics


def test_the_first_tenants_keep_their_names_the_rest_are_other() -> None:
    label = TenantLabels(top=2)
    assert [label(t) for t in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]


def test_a_thousand_tenants_make_at_most_top_plus_one_series() -> None:
    registry = CollectorRegistry()
    metrics = TenantMetrics(registry, top=5)
    for i in range(1000):
        metrics.refusal(f"tenant-{i}", "free", "tenant_limit")
    samples = [s for m in registry.collect() if m.name == "inferlab_tenant_requests_refused" for s in m.samples
               if s.name.endswith("_total")]
    assert len(samples) == 6
    assert next(s.value for s in samples if s.labels["tenant"] == OTHER) == 995
