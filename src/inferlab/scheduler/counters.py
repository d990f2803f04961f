"""Fair-share counters: the service each tenant received on one pool, in tokens over its weight
(the Virtual Token Counter of Sheng et al., "Fairness in Serving Large Language Models", OSDI 2024).

A fair queue serves the backlogged tenant whose counter is lowest. ``LocalCounters`` keeps them
in this process; ``inferlab.scheduler.shared`` merges them through Redis so that every gateway
replica orders by the same service totals. ``generation`` changes whenever values change from
outside (a merge), so a policy knows to re-sort what it keyed on them.
"""

from __future__ import annotations

from typing import Protocol


class FairCounters(Protocol):
    generation: int

    def value(self, tenant: str) -> float: ...

    def add(self, tenant: str, amount: float) -> None:
        """Service (tokens / weight) given to the tenant; negative to correct an estimate."""
        ...

    def lift(self, tenant: str, floor: float) -> float:
        """Raise the tenant's counter to ``floor`` if below (a tenant coming back from idle gets no
        credit for the time it sent nothing); its value after."""
        ...


class LocalCounters:
    """Counters of one process."""

    __slots__ = ("_values", "generation")

    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self.generation = 0

    def value(self, tenant: str) -> float:
        return self._values.get(tenant, 0.0)

    def add(self, tenant: str, amount: float) -> None:
        self._values[tenant] = self._values.get(tenant, 0.0) + amount

    def lift(self, tenant: str, floor: float) -> float:
        current = self._values.get(tenant, 0.0)
        if current < floor:
            self._values[tenant] = current = floor
        return current

    def values(self) -> dict[str, float]:
        return dict(self._values)
