"""Which variant a unit (a tenant, key, user or session) sees: a stable hash of the unit and the
experiment's salt, mapped to a point in [0, 1). The candidate takes the points below its weight,
so a unit always sees the same variant at a given weight, and raising the weight only moves units
from control to candidate (never back): the ramp is monotone. A new salt reshuffles everyone."""

from __future__ import annotations

import hashlib

from inferlab.registry.model import Variant

_SCALE = float(1 << 64)


def bucket(unit: str, salt: str) -> float:
    """The unit's fixed point in [0, 1) for this salt."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(unit: str, salt: str, weight: float) -> Variant:
    """``candidate`` for the units whose point is below ``weight``, else ``control``."""
    return "candidate" if bucket(unit, salt) < weight else "control"
