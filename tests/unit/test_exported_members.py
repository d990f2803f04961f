"""The public surface: every package whose ``__init__`` declares ``__all__`` exports exactly names that
exist, each once, and lists every public InferLab object it holds (httpx ``test_exported_members``)."""

from __future__ import annotations

import importlib
import types
import typing
from pathlib import Path

import pytest

import inferlab

ROOT = Path(inferlab.__file__).parent


def _packages_with_all() -> list[str]:
    names = []
    for init in sorted(ROOT.rglob("__init__.py")):
        if "__all__" in init.read_text(encoding="utf-8"):
            parts = init.parent.relative_to(ROOT.parent).parts
            names.append(".".join(parts))
    return names


PACKAGES = _packages_with_all()


def test_the_packages_are_found() -> None:
    assert {"inferlab.ratelimit", "inferlab.cache", "inferlab.router", "inferlab.testing"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_once(name: str) -> None:
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    missing = [attr for attr in exported if not hasattr(package, attr)]  # lazy names are imported here
    assert not missing, f"{name}.__all__ lists names it does not have"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_exported(name: str) -> None:
    package = importlib.import_module(name)
    held = {
        attr for attr, value in vars(package).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules become attributes once imported
        and getattr(typing, attr, None) is not value  # typing helpers (TYPE_CHECKING, Any, ...)
        and attr != "annotations"  # from __future__ import annotations
    }
    assert held <= set(package.__all__), f"{name} holds public names missing from __all__"
