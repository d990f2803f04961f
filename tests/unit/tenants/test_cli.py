"""``inferlab tenants|tiers`` against the store ``serve`` uses: JSON out, clear errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from inferlab.auth import cli as auth_cli
from inferlab.tenants import cli as tenants_cli


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    auth_cli.register(root)
    tenants_cli.register(root)
    return root


def invoke(app: typer.Typer, data_dir: Path, *args: str) -> Result:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def ok(app: typer.Typer, data_dir: Path, *args: str) -> Any:
    result = invoke(app, data_dir, *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    return [json.loads(line) for line in lines] if args[1] == "list" else json.loads(result.stdout) if lines else None


def refused(app: typer.Typer, data_dir: Path, code: int, *args: str) -> str:
    result = invoke(app, data_dir, *args)
    assert result.exit_code == code, result.output
    assert result.stdout == "" and result.stderr.startswith("error: ")
    return " ".join(result.stderr.split())  # as wrapped for the terminal


def test_tenants_and_tiers_lifecycle(app: typer.Typer, tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text("description: Gold\nmodels: ['gold-*']\nmax_tokens: 2048\ntenant_limits: {rpm: 100}\n")
    put = ok(app, tmp_path, "tiers", "put", "gold", str(gold))
    assert (put["name"], put["origin"], put["max_tokens"], put["tenant_limits"]["rpm"]) == ("gold", "stored", 2048, 100)
    listed = {tier["name"]: tier["origin"] for tier in ok(app, tmp_path, "tiers", "list")}
    assert listed == {"enterprise": "shipped", "free": "shipped", "gold": "stored", "pro": "shipped"}
    shown = ok(app, tmp_path, "tiers", "show", "free")
    assert shown["max_tokens"] == 512 and shown["origin"] == "shipped"
    (tmp_path / "free.json").write_text(json.dumps({**shown, "max_tokens": 256}))  # `show`, edited, put back
    assert ok(app, tmp_path, "tiers", "put", "free", str(tmp_path / "free.json"))["max_tokens"] == 256

    created = ok(app, tmp_path, "tenants", "create", "acme", "--name", "Acme", "--tier", "gold")
    assert (created["id"], created["name"], created["tier"], created["status"]) == ("acme", "Acme", "gold", "active")
    assert [t["id"] for t in ok(app, tmp_path, "tenants", "list")] == ["acme", "default"]
    assert ok(app, tmp_path, "tenants", "rename", "acme", "Acme Inc")["name"] == "Acme Inc"
    overrides = tmp_path / "acme.yaml"
    overrides.write_text("max_tokens: 64\ntenant_limits:\n  rpm: 10\n")
    assert ok(app, tmp_path, "tenants", "set-overrides", "acme", str(overrides))["overrides"] == {
        "max_tokens": 64, "tenant_limits": {"rpm": 10}}
    assert ok(app, tmp_path, "tenants", "set-overrides", "acme", "--clear")["overrides"] is None
    assert ok(app, tmp_path, "tenants", "set-tier", "acme", "pro")["tier"] == "pro"
    back = ok(app, tmp_path, "tenants", "set-tier", "acme", "--default")
    assert back["tier"] is None and back["effective_tier"] == "enterprise"
    assert ok(app, tmp_path, "tenants", "suspend", "acme")["status"] == "suspended"
    assert ok(app, tmp_path, "tenants", "resume", "acme")["status"] == "active"
    assert ok(app, tmp_path, "tenants", "show", "acme")["name"] == "Acme Inc"

    invoke(app, tmp_path, "users", "create", "alice", "--tenant", "acme")
    key = invoke(app, tmp_path, "keys", "create", "--user", "alice", "--tenant", "acme").stdout.strip()
    assert "--yes" in refused(app, tmp_path, 2, "tenants", "delete", "acme")
    assert ok(app, tmp_path, "tenants", "delete", "acme", "--yes")["status"] == "deleted"
    assert [k["revoked"] for k in ok(app, tmp_path, "keys", "list")] == [True] and key.startswith("il-")
    assert "never reused" in refused(app, tmp_path, 1, "tenants", "create", "acme")

    assert ok(app, tmp_path, "tiers", "delete", "gold") is None
    assert "No such tier" in refused(app, tmp_path, 1, "tiers", "show", "gold")
    assert ok(app, tmp_path, "tiers", "delete", "free") is None  # the shipped one applies again
    assert ok(app, tmp_path, "tiers", "show", "free")["max_tokens"] == 512


def test_bad_input_is_a_clear_error(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_tokens: 0\n")
    assert "max_tokens: Input should be greater than or equal to 1" in refused(
        app, tmp_path, 2, "tiers", "put", "x", str(bad))
    bad.write_text("maxtokens: 10\n")
    assert "maxtokens: not a tier field" in refused(app, tmp_path, 2, "tiers", "put", "x", str(bad))
    bad.write_text("[1, 2]\n")
    assert "must hold a mapping" in refused(app, tmp_path, 2, "tiers", "put", "x", str(bad))
    bad.write_text("max_tokens: [\n")
    assert "not valid YAML or JSON" in refused(app, tmp_path, 2, "tiers", "put", "x", str(bad))
    assert "cannot read tier file" in refused(app, tmp_path, 2, "tiers", "put", "x", str(tmp_path / "none.yaml"))
    assert "tier name" in refused(app, tmp_path, 2, "tiers", "put", "Bad Name", str(bad))

    assert "No tier 'nope'" in refused(app, tmp_path, 1, "tenants", "create", "acme", "--tier", "nope")
    assert "tenant id is" in refused(app, tmp_path, 1, "tenants", "create", "Acme Corp")
    assert "No such tenant" in refused(app, tmp_path, 1, "tenants", "show", "ghost")
    assert "No such tenant" in refused(app, tmp_path, 1, "tenants", "suspend", "ghost")
    ok(app, tmp_path, "tenants", "create", "acme")
    assert "--default" in refused(app, tmp_path, 2, "tenants", "set-tier", "acme")
    assert "--default" in refused(app, tmp_path, 2, "tenants", "set-tier", "acme", "pro", "--default")
    assert "--clear" in refused(app, tmp_path, 2, "tenants", "set-overrides", "acme")
    bad.write_text("over_cap: shrug\n")
    assert "Invalid override: over_cap" in refused(app, tmp_path, 1, "tenants", "set-overrides", "acme", str(bad))
    assert "default tenant or your own" in refused(app, tmp_path, 1, "tenants", "suspend", "default")
    assert "No such stored tier" in refused(app, tmp_path, 1, "tiers", "delete", "pro")
    assert "name is 1 to" in refused(app, tmp_path, 2, "tenants", "rename", "acme", " ")
