"""``inferlab config check`` fails exactly when ``serve`` would; the banner and ``--version``."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import inferlab
from inferlab.cli import app, banner_lines
from inferlab.config import Settings

ROOT = Path(__file__).resolve().parents[3]
REMOTE = "models:\n  - {name: a, backend: openai, url: 'http://127.0.0.1:9/v1'}\n"

runner = CliRunner()


@pytest.fixture(autouse=True)
def keep_inferlab_logger() -> Iterator[None]:
    """``serve`` configures the ``inferlab`` logger; put it back for the tests that follow."""
    logger = logging.getLogger("inferlab")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert lines, output
    return lines[0]


@pytest.mark.parametrize(
    "text, flags, expected",
    [
        ("models: []\n", [], "no model is configured"),
        ("models:\n  - {name: a, backend: llamacpp, path: /nonexistent/model.gguf}\n", [],
         "/nonexistent/model.gguf"),
        (("models:\n  - {name: a, backend: llamacpp, path: embedded:smollm2}\n"
          "engines:\n  prefer: llama-server\n  llama_server_path: /nonexistent/llama-server\n"), [],
         "/nonexistent/llama-server"),
        ("server: {host: 0.0.0.0}\n" + REMOTE, [], "authentication is off"),
        (REMOTE, ["--host", "0.0.0.0"], "authentication is off"),
        ("modles: []\n" + REMOTE, [], "did you mean 'models'?"),
    ],
)
def test_config_check_fails_exactly_when_serve_would(
    tmp_path: Path, text: str, flags: list[str], expected: str
) -> None:
    config = tmp_path / "inferlab.yaml"
    config.write_text(text)
    data = ["--data-dir", str(tmp_path / "data")]
    checked = runner.invoke(app, ["config", "check", "-c", str(config), *flags, *data])
    served = runner.invoke(app, ["serve", "-c", str(config), *flags, *data])
    assert checked.exit_code == served.exit_code == 2, (checked.output, served.output)
    assert expected in checked.output
    assert error_line(checked.output) == error_line(served.output)


def test_config_check_passes_a_servable_file(tmp_path: Path) -> None:
    config = tmp_path / "inferlab.yaml"
    config.write_text(REMOTE)
    checked = runner.invoke(app, ["config", "check", "-c", str(config), "--port", "9123"])
    assert checked.exit_code == 0, checked.output
    assert '"port": 9123' in checked.output


def test_banner_names_every_replica_url_and_the_version() -> None:
    settings = Settings(models=[
        {"name": "pool", "backend": "openai", "urls": ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]},
        {"name": "one", "backend": "ollama", "url": "http://127.0.0.1:11434"},
    ])
    text = "\n".join(banner_lines(settings, []))
    assert "None" not in text and inferlab.__version__ in text
    for url in ("http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1", "http://127.0.0.1:11434"):
        assert url in text


def test_one_version_everywhere() -> None:
    assert inferlab.__version__ == "0.2.1"
    for argv in (["--version"], ["version"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0 and result.output.strip() == inferlab.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "inferlab.__version__"}
