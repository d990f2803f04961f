"""The import rules of the layout (docs/architecture.md), checked on the source, not trusted.

- Only ``api/``, ``app.py``, ``server.py`` and the ``testing/`` doubles (which run real HTTP
  servers) import ``aiohttp.web``.
- No package imports ``api/`` but the composition root, the server and the CLI.
- Capability packages never import another capability's request step (``<pkg>/step.py``)
  except the pipeline's own types; only the composition root assembles the chain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "inferlab"
WEB_ALLOWED = ("api/", "app.py", "server.py", "testing/")
API_IMPORTERS = ("api/", "app.py", "server.py", "cli.py")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("store/migrations/versions/"):
            continue
        yield relative, ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


MODULES = list(_modules())


@pytest.mark.parametrize(("relative", "tree"), MODULES, ids=[m[0] for m in MODULES])
def test_only_the_http_layer_imports_aiohttp_web(relative: str, tree: ast.Module) -> None:
    if relative.startswith(WEB_ALLOWED):
        return
    offending = [name for name in _imports(tree) if name == "aiohttp.web" or name.startswith("aiohttp.web.")]
    assert not offending, f"{relative} imports {offending}: only api/, app.py and server.py may"


@pytest.mark.parametrize(("relative", "tree"), MODULES, ids=[m[0] for m in MODULES])
def test_capabilities_never_import_the_api(relative: str, tree: ast.Module) -> None:
    if relative.startswith(API_IMPORTERS):
        return
    offending = [name for name in _imports(tree) if name == "inferlab.api" or name.startswith("inferlab.api.")]
    assert not offending, f"{relative} imports {offending}: capability packages never import api/"


@pytest.mark.parametrize(("relative", "tree"), MODULES, ids=[m[0] for m in MODULES])
def test_steps_are_assembled_only_by_the_composition_root(relative: str, tree: ast.Module) -> None:
    if relative in ("app.py", "services.py") or relative.startswith("testing/"):
        return
    package = relative.split("/", 1)[0]
    offending = [
        name for name in _imports(tree)
        if name.startswith("inferlab.") and ".step" in name
        and name.split(".")[1] != package and not name.startswith("inferlab.pipeline")
    ]
    assert not offending, f"{relative} imports another capability's step: {offending}"
