"""The settings sit at the bottom of the import graph: ``inferlab.config`` imports no other part of
InferLab, so any package may import its section without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[3] / "src" / "inferlab" / "config"
MODULES = sorted(CONFIG.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_config_imports_nothing_else_of_inferlab(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [
        node.module for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0
    ]
    offending = [name for name in imported if name.split(".")[0] == "inferlab" and not name.startswith("inferlab.config")]
    assert not offending, f"config/{path.name} imports {offending}"
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), "absolute imports only"
