"""`inferlab keys|users|db` against the store `serve` uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferlab.auth import cli as auth_cli
from inferlab.store import head_revision


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        pass

    auth_cli.register(root)
    return root


def run(app: typer.Typer, *args: str, data_dir: Path) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_lifecycle(app: typer.Typer, tmp_path: Path) -> None:
    assert run(app, "db", "upgrade", data_dir=tmp_path).strip() == head_revision() == "0013_idempotency"
    user_id = run(app, "users", "create", "alice", "--role", "tenant-admin", data_dir=tmp_path).strip()
    assert user_id.startswith("u_")
    out = run(app, "keys", "create", "--user", "alice", "-g", "inference", "-g", "admin", "-m", "m1",
              "--expires-in", "30d", data_dir=tmp_path)
    key = out.strip()
    assert out == key + "\n" and key.startswith("il-")  # the key and nothing else on stdout
    listed = [json.loads(line) for line in run(app, "keys", "list", data_dir=tmp_path).splitlines()]
    assert [k["prefix"] for k in listed] == ["il-" + key.split("-")[1]]
    assert key not in json.dumps(listed) and listed[0]["models"] == ["m1"]
    rotated = run(app, "keys", "rotate", listed[0]["id"], data_dir=tmp_path).strip()
    assert rotated.startswith("il-") and rotated != key
    run(app, "keys", "revoke", rotated, data_dir=tmp_path)
    states = {k["id"]: k["revoked"] for k in map(json.loads, run(app, "keys", "list", data_dir=tmp_path).splitlines())}
    assert list(states.values()) == [True, True]
    users = [json.loads(line) for line in run(app, "users", "list", data_dir=tmp_path).splitlines()]
    assert [u["name"] for u in users] == ["alice"]
    run(app, "users", "update", user_id, "--role", "member", data_dir=tmp_path)
    run(app, "users", "delete", user_id, data_dir=tmp_path)
    assert run(app, "keys", "list", data_dir=tmp_path) == ""


def test_unknown_user_fails_cleanly(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--user", "nobody", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and result.stdout == ""
