"""The anomaly alert rules: valid (``promtool check rules``), firing as intended on synthetic
series (``promtool test rules``), on series a gateway with the detector on exports, each with a
runbook section."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient, TestServer

from inferlab.app import create_app
from inferlab.config import Settings
from inferlab.testing import EngineSimulator

from ..slo.test_alert_rules import promtool

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "anomaly-alerts.yaml"
RULE_TESTS = Path(__file__).with_name("anomaly-alerts.test.yaml")


def alerts() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_and_tests_the_rules() -> None:
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "SUCCESS: 2 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, check=False)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_each_alert_has_a_severity_and_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
               for title in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)}
    for alert in alerts():
        assert alert["labels"]["severity"] in ("page", "ticket")  # type: ignore[index]
        assert alert["annotations"]["runbook_url"].split("#", 1)[1] in anchors  # type: ignore[index]


async def test_the_series_they_use_are_on_a_gateways_metrics(sim: EngineSimulator, tmp_path: Path) -> None:
    app = await create_app(Settings(data_dir=tmp_path, anomaly={"enabled": True, "backfill_s": 0},
                                    models=[{"name": "sim-model", "backend": "openai", "url": f"{sim.base_url}/v1"}]))
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()
    used = {name for alert in alerts() for name in re.findall(r"inferlab_[a-z_]+", str(alert["expr"]))}
    assert used == {"inferlab_anomaly_open_incidents"}
    assert "# TYPE inferlab_anomaly_open_incidents gauge" in text
    assert "# TYPE inferlab_anomaly_incidents_total counter" in text
