"""``inferlab models convert`` refuses what it cannot convert, with a reason, before running anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferlab.modelstore import ModelStore, StoreError
from inferlab.modelstore.cli import register
from inferlab.modelstore.convert import check_checkpoint, convert, find_convert_python


def test_a_checkpoint_needs_a_config_and_weights(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no config\.json"):
        check_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(StoreError, match="no weights"):
        check_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\0")
    assert check_checkpoint(tmp_path) == tmp_path


def test_the_python_must_exist_and_have_torch(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        find_convert_python(str(tmp_path / "nowhere" / "python"))
    assert find_convert_python(sys.executable) == sys.executable
    if importlib.util.find_spec("torch") is None:  # the gateway's venv: torch is never in it
        with pytest.raises(StoreError, match=r"install inferlab\[convert\]"):
            find_convert_python(None)


async def test_unknown_output_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unknown output type 'q4_k_m'"):
        await convert(ModelStore(tmp_path), tmp_path, "x:y", python=sys.executable, converter=tmp_path,
                      outtype="Q4_K_M")


def test_the_cli_says_what_is_missing(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["models", "convert", str(tmp_path), "tiny:f16", "--python",
                                      str(tmp_path / "missing"), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "does not exist" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["models", "pull", "http://127.0.0.1:9/x.gguf", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "a URL pull needs the name[:tag]" in " ".join(result.output.split())
