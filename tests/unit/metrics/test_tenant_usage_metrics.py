"""Per-tenant tokens and cost, fed by the metering step's ``UsageObserver``: bounded labels, every
usage event counted once (through a live gateway: tests/integration/ops/test_grafana_dashboards.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry

from inferlab.metering import EventStatus, TokenSource, UsageEvent
from inferlab.metering.step import MeterUsage
from inferlab.metrics.tenants import OTHER, TenantMetrics
from inferlab.pipeline import SUCCESS, Call
from inferlab.types import Caller, RequestKind


def _event(tenant: str, prompt: int, completion: int, price: str) -> UsageEvent:
    return UsageEvent(id="e", time=datetime.now(UTC), tenant=tenant, user=None, key=None, tier="free",
                      route="/v1/chat/completions", model="m", model_version=None, replica="r0", hardware=None,
                      prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0,
                      token_source=TokenSource.ENGINE, queue_ms=None, ttft_ms=None, duration_ms=1.0,
                      status=EventStatus.SUCCESS, http_status=200, price=Decimal(price))


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for m in registry.collect() if m.name == name for s in m.samples
            if s.name.endswith("_total")}


def test_tokens_and_cost_per_tenant_with_bounded_labels() -> None:
    registry = CollectorRegistry()
    metrics = TenantMetrics(registry, top=3)
    for i in range(500):
        metrics.usage_recorded(_event(f"t{i % 50}", 10, 2, "0.001"))
    tokens = _samples(registry, "inferlab_tenant_tokens")
    cost = _samples(registry, "inferlab_tenant_cost_usd")
    assert len(tokens) == 2 * 4 and len(cost) == 4  # 3 named tenants and "other"
    assert tokens[("t0", "prompt")] == 100 and tokens[(OTHER, "completion")] == 2 * 470
    assert abs(sum(cost.values()) - 0.5) < 1e-9


def test_the_metering_step_reports_each_event_it_makes() -> None:
    seen: list[UsageEvent] = []

    class Observer:
        def usage_recorded(self, event: UsageEvent) -> None:
            seen.append(event)

    step = MeterUsage(recorder=None, tokenizers={}, observer=Observer())  # type: ignore[arg-type]  # no recording here
    call = Call(request_id="r1", kind=RequestKind.CHAT, route="/v1/chat/completions", model="chat", body={},
                caller=Caller())
    event = step.event(call, "e1", SUCCESS)
    assert seen == [event]
