"""InferLab's Grafana dashboards (deploy/grafana) as files: each validates against the dashboard
schema kept beside them, is what ``build.py`` writes, lays its panels out without overlap, defines
every variable it uses, parses as PromQL (``promtool``), and is provisioned by the compose stack.
That each metric exists in a live gateway's ``/metrics``: test_dashboard_metrics.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from inferlab.testing.needs import require

from .dashboards import DASHBOARDS, GRAFANA, GRAFANA_VARIABLES, ROOT, SCHEMA, load, queries


def test_four_dashboards_validate_against_the_schema() -> None:
    schema = load(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert [path.name for path in DASHBOARDS] == ["inferlab-latency-slo.json", "inferlab-overview.json",
                                                  "inferlab-pools-engines.json", "inferlab-tenants-usage.json"]
    for path in DASHBOARDS:
        errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(load(path))]
        assert not errors, (path.name, errors[:5])
    broken = load(DASHBOARDS[0])
    broken["panels"][1]["gridPos"]["w"] = 30
    del broken["panels"][1]["targets"][0]["refId"]
    assert len(list(validator.iter_errors(broken))) == 2  # the schema does catch mistakes


def test_the_json_is_what_build_py_writes() -> None:
    done = subprocess.run([sys.executable, str(GRAFANA / "build.py"), "--check"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_panels_tile_the_grid_and_ids_are_unique() -> None:
    uids = []
    for path in DASHBOARDS:
        board = load(path)
        uids.append(board["uid"])
        cells: dict[tuple[int, int], str] = {}
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (path.name, panel["title"])
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, (path.name, panel["title"], "overlaps", cells[(x, y)])
                    cells[(x, y)] = panel["title"]
    assert len(uids) == len(set(uids))


def test_every_variable_used_is_defined_and_queries_use_the_datasource_variable() -> None:
    for path in DASHBOARDS:
        board = load(path)
        defined = {variable["name"] for variable in board["templating"]["list"]}
        assert "datasource" in defined
        for query in queries(path):
            used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", query.expr)) - {v[1:] for v in GRAFANA_VARIABLES}
            assert used <= defined, (path.name, query.panel, used - defined)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    found = shutil.which("promtool") or str(Path(sys.executable).with_name("promtool"))
    require(Path(found).exists(), "promtool is not installed (./dev setup test extracts it from Debian's prometheus)")
    rules = [{"record": f"dashboard:query_{i}", "expr": query.promql()}
             for i, query in enumerate(q for path in DASHBOARDS for q in queries(path))
             if not query.expr.startswith("label_values(")]
    assert len(rules) > 50
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run([found, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_stack_provisions_them() -> None:
    provider = yaml.safe_load((ROOT / "deploy/compose/grafana/provisioning/dashboards/inferlab.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in grafana["volumes"]
    assert "./deploy/compose/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
