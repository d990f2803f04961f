"""The shipped burn-rate alert rules: valid Prometheus rules (``promtool check rules``), firing as
intended on synthetic series (``promtool test rules``), and written on metrics the gateway exports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from inferlab.metrics.slo import SloMetrics
from inferlab.testing.needs import require

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "slo-alerts.yaml"
RULE_TESTS = Path(__file__).with_name("slo-alerts.test.yaml")
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def promtool() -> str:
    found = shutil.which("promtool") or str(Path(sys.executable).with_name("promtool"))
    require(Path(found).exists(), "promtool is not installed (./dev setup test extracts it from Debian's prometheus)")
    return found


def test_the_rules_are_multi_window_burn_rate_alerts_on_exported_metrics() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    assert recorded == {f"inferlab:slo_bad_ratio:rate{w}" for w in WINDOWS} | {"inferlab:slo_error_budget"}
    alerts = {rule["alert"]: rule for rule in rules if "alert" in rule}
    assert {a["labels"]["severity"] for a in alerts.values()} == {"page", "ticket"}
    fast = alerts["InferLabSLOBudgetBurnFast"]["expr"]
    assert "rate1h > on (tier, slo) group_left () (14.4 *" in fast and "rate5m" in fast and "rate6h" in fast
    slow = alerts["InferLabSLOBudgetBurnSlow"]["expr"]
    assert "rate1d" in slow and "rate3d" in slow

    registry = CollectorRegistry()
    metrics = SloMetrics(registry)
    metrics.slo_outcome("pro", "m", "ttft", good=False)
    metrics.slo_objective("pro", "ttft", 0.95)
    exported = {sample.name for family in registry.collect() for sample in family.samples}
    raw = {name for rule in rules for name in re.findall(r"\binferlab_[a-z_]+", rule["expr"])}
    assert raw == {"inferlab_slo_requests_total", "inferlab_slo_objective"} and raw <= exported


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_the_alerts_fire_on_a_fast_burn_and_not_on_a_slow_one() -> None:
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
