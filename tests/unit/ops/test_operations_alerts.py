"""The operational alert rules: valid (``promtool check rules``), firing as intended on synthetic
series (``promtool test rules``), and written only on series a running gateway's /metrics exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from inferlab.app import create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

from ..slo.test_alert_rules import promtool

ROOT = Path(__file__).resolve().parents[3]
RULE_FILES = [ROOT / "deploy" / "prometheus" / name for name in ("operations-alerts.yaml", "slo-alerts.yaml")]
RULE_TESTS = Path(__file__).with_name("operations-alerts.test.yaml")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
PROMETHEUS_OWN = {"up"}  # written by Prometheus for each scrape target, not by the gateway


def rules() -> list[dict[str, str]]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def used_series() -> set[str]:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    names = {name for rule in rules() for name in re.findall(r"\b[a-z_][a-z0-9_:]*(?=\s*[{\[)]|\s*[=!<>]=?|\s*$)",
                                                             rule["expr"], re.MULTILINE)}
    names = {n for n in names if n.startswith("inferlab_") or n in PROMETHEUS_OWN}
    return names - recorded


async def test_every_series_the_rules_use_is_on_a_gateways_metrics(sim: EngineSimulator) -> None:
    settings = Settings(features={"ratelimit": True, "cache": True, "resources": True},
                        ratelimit={"limits": [{"scope": "key", "rpm": 10}]},
                        redis_url="redis://127.0.0.1:1/0",  # never reached: built, not started
                        models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}])
    app = await create_app(settings)
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()
    exported = {family.name + suffix for family in text_string_to_metric_families(text)
                for suffix in SUFFIXES.get(family.type, ("",))}
    exported |= {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    used = used_series()
    assert {"inferlab_engine_up", "inferlab_dependency_up", "inferlab_queue_wait_seconds_count",
            "inferlab_usage_outbox_backlog", "inferlab_requests_total", "up"} <= used
    missing = used - exported - PROMETHEUS_OWN
    assert not missing, f"rules use series the gateway does not export: {sorted(missing)}"
    for dependency in ("redis", "cache_redis"):  # refreshed by the scrape itself: Redis is unreachable
        assert f'inferlab_dependency_up{{dependency="{dependency}"}} 0.0' in text


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
               for title in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)}
    alerts = [rule for rule in rules() if "alert" in rule and "runbook_url" in rule.get("annotations", {})]
    assert len(alerts) >= 15
    for alert in alerts:
        assert alert["labels"]["severity"] in ("page", "ticket")  # type: ignore[index]
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]  # type: ignore[index]
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in docs/operations.md"


def test_promtool_checks_and_tests_the_rules() -> None:
    checked = subprocess.run([promtool(), "check", "rules", str(RULE_FILES[0])], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0 and "SUCCESS: 19 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
