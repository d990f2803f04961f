"""Packaging: the hash-pinned locks cover pyproject.toml's requirements, the image is multi-stage
and unprivileged with llama-server built in, the compose file wires the five services with secrets
from the environment, the systemd unit verifies — each as far as this machine can check."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from inferlab.config import load_settings
from inferlab.workers import multi_worker_problems

ROOT = Path(__file__).resolve().parents[3]


def locked(name: str) -> dict[str, tuple[str, int]]:
    """package → (version, number of hashes) for the entries of requirements/<name>.lock that apply here."""
    text = (ROOT / "requirements" / f"{name}.lock").read_text()
    pins: dict[str, tuple[str, int]] = {}
    for entry in re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2]):
        head = entry.split("\\", 1)[0].strip()
        requirement = Requirement(head)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            pins[requirement.name.lower().replace("_", "-")] = (spec.version, entry.count("--hash=sha256:"))
    return pins


@pytest.mark.parametrize("lock", ["server", "test"])
def test_the_lock_pins_every_requirement_with_hashes(lock: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    if lock == "test":
        wanted += [Requirement(r) for r in project["optional-dependencies"]["test"]]
    pins = locked(lock)
    assert all(hashes >= 1 for _, hashes in pins.values())
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements/{lock}.lock: run ./dev lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements/{lock}.lock pins {name}=={pins[name][0]}, outside {requirement.specifier}: run ./dev lock")


def test_dev_setup_installs_the_lock_and_audits_it() -> None:
    dev = (ROOT / "dev").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "dev")], check=False).returncode == 0
    assert '--require-hashes --no-deps -r "$lock"' in dev and 'pip install -q -e ".' in dev
    assert "pip-audit\" -r requirements/test.lock --require-hashes" in dev and "is not reachable" in dev


def test_the_image_is_multi_stage_unprivileged_and_built_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", dockerfile, re.MULTILINE)
    assert [name for _, name in stages] == ["build", "runtime"]
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "cmake" not in runtime and "COPY --from=build /opt/inferlab /opt/inferlab" in runtime
    user = re.findall(r"^USER (\S+)", runtime, re.MULTILINE)
    assert user and not user[-1].startswith(("0", "root"))
    assert "--require-hashes --no-deps -r requirements/server.lock" in dockerfile
    assert "inferlab engines build" in dockerfile and "INFERLAB_ENGINES__LLAMA_SERVER_PATH" in runtime
    assert "/health" in runtime.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    settings = load_settings(ROOT / "deploy" / "docker" / "inferlab.yaml")
    assert settings.server.host == "0.0.0.0" and settings.models[0].path == "embedded:smollm2"


def test_compose_runs_the_five_services_with_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"gateway", "postgres", "redis", "prometheus", "grafana"}
    gateway = services["gateway"]
    assert gateway["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
    assert all("healthcheck" in services[name] for name in ("postgres", "redis"))
    text = (ROOT / "compose.yaml").read_text()
    assert re.findall(r"PASSWORD: (.+)", text) == ["${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"]
    assert gateway["environment"]["INFERLAB_AUTH__PEPPER"].startswith("${INFERLAB_PEPPER:?")
    prometheus = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    for rule_file in prometheus["rule_files"]:
        assert (ROOT / "deploy" / "prometheus" / Path(rule_file).name).is_file()
    for volume in (v for s in services.values() for v in s.get("volumes", []) if v.startswith("./")):
        assert (ROOT / volume.split(":")[0]).exists(), volume
    monkeypatch.setenv("INFERLAB_DATABASE_URL", "postgresql+asyncpg://inferlab:x@postgres:5432/inferlab")
    monkeypatch.setenv("INFERLAB_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("INFERLAB_AUTH__PEPPER", "p" * 32)
    settings = load_settings(ROOT / "deploy" / "compose" / "inferlab.yaml")
    assert settings.server.workers == 2 and multi_worker_problems(settings) == []
    docker = shutil.which("docker")
    has_compose = docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True,
                                                        check=False).returncode == 0
    if has_compose:  # not on this machine (a docker CLI without the compose plugin): checked where it is
        checked = subprocess.run([docker or "docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                                 capture_output=True, text=True, check=False,
                                 env={"POSTGRES_PASSWORD": "x", "INFERLAB_PEPPER": "y", "PATH": "/usr/bin:/bin"})
        assert checked.returncode == 0, checked.stderr


def test_the_systemd_unit_verifies_and_outwaits_the_drain(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "systemd" / "inferlab.service").read_text()
    stop_s = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert stop_s > 60 and "KillSignal=SIGTERM" in unit and re.search(r"^User=inferlab$", unit, re.MULTILINE)
    assert "EnvironmentFile=-/etc/inferlab/secrets.env" in unit and "PEPPER=" not in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # not a systemd host: the static checks above are what can run
        return
    here = tmp_path / "inferlab.service"  # the unit as installed, ExecStart pointing at this environment's CLI
    here.write_text(unit.replace("/opt/inferlab/bin/inferlab", str(Path(sys.executable).with_name("inferlab"))))
    result = subprocess.run([analyze, "verify", str(here)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0 and "inferlab.service" not in result.stderr, result.stderr
