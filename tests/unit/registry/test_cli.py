"""``inferlab models`` and ``inferlab registry`` on a data directory of their own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from typer.testing import CliRunner

from inferlab.modelstore import cli as models_cli
from inferlab.registry import cli as registry_cli


def _app() -> typer.Typer:
    app = typer.Typer()
    models_cli.register(app)
    registry_cli.register(app)
    return app


def test_store_a_file_register_it_alias_it_and_clean_up(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(4096))
    runner, app, data = CliRunner(), _app(), ["--data-dir", str(tmp_path / "data")]

    added = runner.invoke(app, ["models", "add", str(gguf), "tiny:v1", *data])
    assert added.exit_code == 0, added.output
    digest = json.loads(added.stdout)["layers"][0]["digest"]
    listed = [json.loads(line) for line in runner.invoke(app, ["models", "list", *data]).stdout.splitlines()]
    assert listed == [{"model": "tiny:v1", "digest": digest, "size": 4100, "created": listed[0]["created"]}]
    assert runner.invoke(app, ["models", "verify", "tiny:v1", *data]).exit_code == 0

    version = runner.invoke(app, ["registry", "add-version", "tiny", "v1", "--from-store", "tiny:v1", *data])
    assert version.exit_code == 0, version.output
    assert json.loads(version.stdout)["digest"] == digest
    assert runner.invoke(app, ["registry", "alias", "tiny", "stable", "v1", *data]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["registry", "show", *data]).stdout)
    tiny = next(model for model in shown["models"] if model["model"] == "tiny")
    assert tiny["aliases"] == {"stable": "v1"} and tiny["versions"][0]["spec"]["backend"] == "llamacpp"

    refused = runner.invoke(app, ["registry", "rm-version", "tiny", "v1", *data])
    assert refused.exit_code == 1 and "aliased" in refused.output  # a clear message, no traceback
    missing = runner.invoke(app, ["models", "show", "nope", *data])
    assert missing.exit_code == 1 and "no model nope:latest" in missing.output
    assert runner.invoke(app, ["models", "rm", "tiny:v1", *data]).exit_code == 0
    pruned = json.loads(runner.invoke(app, ["models", "prune", *data]).stdout)
    assert pruned == {"removed": [digest]}
