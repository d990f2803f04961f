"""Every metric the Grafana dashboards query exists in a live gateway's ``/metrics``: a real
``inferlab serve`` process in front of the engine simulator, driven with enough traffic (two
tenants, streams, a cache hit, rate-limit refusals, a queue) that its counters and histograms have
samples. A metric with no sample after that traffic must say why here (it needs a managed engine or
a failing replica, which other tests run). Label matchers must name labels the metric has."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess, http_get

from .dashboards import DASHBOARDS, label_values_label, matched_labels, metric_names, queries
from .traffic import drive, gateway_config

NO_SAMPLE_HERE = {  # exported, but no sample from this traffic: where it is exercised
    "inferlab_engine_up": "managed engines only (llama.cpp processes): tests/e2e/test_engine_lifecycle.py",
    "inferlab_engine_restarts_total": "a managed engine restarted: tests/e2e/test_engine_lifecycle.py",
    "inferlab_engine_group_transitions_total": "llama.cpp RPC / Ray engine groups: tests/e2e/test_engine_group_*.py",
    "inferlab_retries_total": "a failover to another replica: needs a failing replica (tests/integration/router)",
}


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=8, token_delay_s=0.03)


@pytest.fixture
async def scraped(sim: EngineSimulator) -> AsyncIterator[str]:
    gateway = GatewayProcess(gateway_config(sim))
    await asyncio.to_thread(gateway.start)
    try:
        root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
        await asyncio.to_thread(drive, gateway.url, root.strip("\"',"))
        await asyncio.sleep(0.3)  # the resource allocator's next tick (resources.refresh_s)
        status, body = await asyncio.to_thread(http_get, gateway.url + "/metrics")
        assert status == 200
        yield body.decode()
    finally:
        await asyncio.to_thread(gateway.stop)


def exposition(text: str) -> tuple[set[str], dict[str, set[str]]]:
    """(every name a query may use, declared or not; {sample name: the label names of its samples})."""
    declared: set[str] = set()
    sampled: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
        declared |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        for sample in family.samples:
            sampled.setdefault(sample.name, set()).update(sample.labels)
    return declared, sampled


async def test_every_metric_the_dashboards_query_is_exported_with_samples(scraped: str) -> None:
    declared, sampled = exposition(scraped)
    used: dict[str, list[str]] = {}
    for path in DASHBOARDS:
        for query in queries(path):
            for name in metric_names(query.expr):
                used.setdefault(name, []).append(f"{query.dashboard}: {query.panel}")
                assert name in declared, (f"{name} is not in /metrics", query)
            for name, labels in matched_labels(query.expr):
                if name in sampled:
                    assert labels <= sampled[name], (f"{name} has no label {labels - sampled[name]}", query)
            chosen = label_values_label(query.expr)
            if chosen is not None:
                assert chosen[1] in sampled.get(chosen[0], set()), query
    assert len(used) >= 30
    unsampled = {name for name in used if name not in sampled}
    assert unsampled <= set(NO_SAMPLE_HERE), unsampled
    assert {"inferlab_tenant_tokens_total", "inferlab_tenant_cost_usd_total", "inferlab_queue_wait_seconds_bucket",
            "inferlab_tenant_kv_tokens_held", "inferlab_slo_requests_total"} <= set(sampled)
    # the per-tenant usage metrics (fed by metering) count what each tenant did
    tokens = {(s.labels["tenant"], s.labels["direction"]): s.value
              for family in text_string_to_metric_families(scraped) if family.name == "inferlab_tenant_tokens"
              for s in family.samples if s.name.endswith("_total")}
    cost = {s.labels["tenant"]: s.value for family in text_string_to_metric_families(scraped)
            if family.name == "inferlab_tenant_cost_usd" for s in family.samples if s.name.endswith("_total")}
    assert tokens[("acme", "completion")] > tokens[("globex", "completion")] > 0  # globex was rate-limited
    assert cost["acme"] > cost["globex"] > 0
