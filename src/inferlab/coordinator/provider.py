"""The seam between the coordinator and where processes run: ``EngineProvider``.

A provider places a group (reserves room for each of its ranks on some node), starts one rank in
its slot, and releases the room again. What runs where is its business; what the group does with
its ranks (order, health, recovery) is the coordinator's (``group.py``), the same for every provider.

Providers: ``LocalProvider`` (child processes of the gateway), ``RayProvider`` (Ray actors in a
placement group across the nodes of a Ray cluster). Kubernetes is declarative: its manifests are
rendered (``kubernetes/``) and the cluster's controllers supervise the pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from inferlab.coordinator.spec import GroupPlan, RankSpec


class PlacementShortfall(Exception):
    """The cluster has no room for the group now; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one rank may run: a node, by id and by the address its processes listen on."""

    node_id: str
    host: str
    index: int  # the bundle (Ray) or the rank number (local)
    handle: object = field(default=None, compare=False, repr=False)  # the provider's own reservation


class Placement(Protocol):
    """Room reserved for one group: one slot per rank, in the plan's order."""

    @property
    def slots(self) -> tuple[Slot, ...]: ...


class RankProcess(Protocol):
    """One running rank, wherever it runs."""

    @property
    def pid(self) -> int | None: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def node_id(self) -> str: ...

    async def wait(self) -> str:
        """Return when the rank is gone, with why (its exit code, or the node that was lost)."""
        ...

    async def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns when it is gone. Idempotent."""
        ...

    def tail(self) -> list[str]:
        """The rank's last output lines (for the error a failed start reports)."""
        ...


class EngineProvider(Protocol):
    name: str

    async def place(self, plan: GroupPlan, timeout_s: float) -> Placement:
        """Reserve a slot for every rank; raises ``PlacementShortfall`` when there is no room."""
        ...

    async def spawn(self, plan: GroupPlan, rank: RankSpec, slot: Slot, values: dict[str, str]) -> RankProcess:
        """Start ``rank`` in ``slot``; ``values`` fill the rank's argv template (``{rpc}`` ...),
        the provider adds ``{host}`` and ``{port}`` (a free port on that node)."""
        ...

    async def release(self, placement: Placement) -> None:
        """Give the reserved room back (after the group's ranks are stopped)."""
        ...

    async def open(self) -> None:
        """Connect to where the ranks run (a Ray cluster); called once, before any placement."""
        ...

    async def close(self) -> None: ...

    def alive_nodes(self) -> list[str]:
        """Ids of the nodes that are up now (for reports)."""
        ...
