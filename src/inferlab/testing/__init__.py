"""Test doubles shipped with InferLab: the engine simulator (a scriptable fake engine, not a model).

The names are imported lazily so that ``python -m inferlab.testing.simulator`` runs the module
once, without runpy's "found in sys.modules" warning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferlab.testing.simulator import EngineSimulator, ScriptError, SimulatorScript

__all__ = ["EngineSimulator", "ScriptError", "SimulatorScript"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("inferlab.testing.simulator"), name)
    raise AttributeError(f"module 'inferlab.testing' has no attribute {name!r}")
