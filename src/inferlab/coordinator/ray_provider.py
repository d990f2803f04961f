"""``RayProvider``: a group's ranks as Ray actors in one placement group across the cluster's nodes.

Placement: one bundle per rank (its CPUs and GPUs), strategy ``spread`` (over as many nodes as
have room, packed when only one has), ``pack`` or ``strict_spread`` (one node per rank). A
placement that the alive nodes cannot hold within the timeout is removed again and reported as a
``PlacementShortfall`` naming what was asked and what is alive, so a group whose node was lost
moves to the surviving nodes when they have room, else says why it cannot.

Each rank is an actor scheduled into its bundle; the actor runs the rank's process on its node
(``ray_rank.RankRunner``; the child dies with the actor). A rank is gone when its process exits
or its actor dies (its node was lost): both end ``wait()``.

``ray`` is an optional dependency (``pip install 'inferlab[ray]'``), imported when a Ray provider
is opened.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from inferlab.coordinator import ray_rank
from inferlab.coordinator.provider import PlacementShortfall, RankProcess, Slot
from inferlab.coordinator.spec import GroupPlan, RankSpec

STRATEGIES = {"pack": "PACK", "spread": "SPREAD", "strict_spread": "STRICT_SPREAD"}


@dataclass(frozen=True, slots=True)
class RayPlacement:
    group: Any  # ray.util.placement_group.PlacementGroup
    slots: tuple[Slot, ...]


class RayRank:
    def __init__(self, actor: Any, info: dict[str, Any], slot: Slot, ray: Any) -> None:
        self._actor = actor
        self._info = info
        self._slot = slot
        self._ray = ray
        self._tail: list[str] = []

    @property
    def pid(self) -> int | None:
        return int(self._info["pid"])

    @property
    def host(self) -> str:
        return str(self._info["host"])

    @property
    def port(self) -> int:
        return int(self._info["port"])

    @property
    def node_id(self) -> str:
        return self._slot.node_id

    def tail(self) -> list[str]:
        return self._tail

    async def wait(self) -> str:
        try:
            return str(await self._actor.wait.remote())
        except self._ray.exceptions.RayActorError as exc:
            return f"its actor died (node {self._slot.node_id[:12]} lost?): {type(exc).__name__}"

    async def stop(self, grace_s: float) -> None:
        try:
            self._tail = list(await asyncio.wait_for(self._actor.tail.remote(), 2.0))
            await asyncio.wait_for(self._actor.stop.remote(grace_s), grace_s + 5.0)
        except (self._ray.exceptions.RayError, TimeoutError):
            pass  # its node is gone, and the process with it
        self._ray.kill(self._actor, no_restart=True)


class RayProvider:
    """Ranks on the nodes of the Ray cluster at ``address`` (the gateway is its driver)."""

    name = "ray"

    def __init__(self, address: str, namespace: str, logger: logging.Logger, *,
                 node_ip_address: str | None = None) -> None:
        """``node_ip_address``: the address of the node this gateway runs on, when Ray cannot tell
        (several nodes on one machine, each on its own loopback address)."""
        self._address = address
        self._node_ip = node_ip_address
        self._namespace = namespace
        self._log = logger
        self._ray: Any = None
        self._runner: Any = None

    async def open(self) -> None:
        import ray as ray_module
        from ray import cloudpickle

        ray: Any = ray_module  # typed loosely: its decorators' overloads do not cover actor options
        pickling: Any = cloudpickle
        pickling.register_pickle_by_value(ray_rank)  # the workers need no InferLab installed
        if not ray.is_initialized():
            options = {"_node_ip_address": self._node_ip} if self._node_ip else {}
            await asyncio.to_thread(ray.init, address=self._address, namespace=self._namespace,
                                    log_to_driver=False, logging_level=logging.WARNING, configure_logging=False,
                                    **options)
        self._ray = ray
        self._runner = ray.remote(max_concurrency=4, max_restarts=0)(ray_rank.RankRunner)
        self._log.info("connected to the Ray cluster", extra={"address": self._address, "nodes": self.alive_nodes()})

    async def close(self) -> None:
        if self._ray is not None and self._ray.is_initialized():
            await asyncio.to_thread(self._ray.shutdown)

    def _nodes(self) -> list[dict[str, Any]]:
        return [node for node in self._ray.nodes() if node.get("Alive")]

    def alive_nodes(self) -> list[str]:
        return [str(node["NodeID"]) for node in self._nodes()] if self._ray is not None else []

    async def place(self, plan: GroupPlan, timeout_s: float) -> RayPlacement:
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group

        bundles = [_bundle(rank) for rank in plan.ranks]
        group = placement_group(bundles, strategy=STRATEGIES[plan.placement])
        try:
            await asyncio.wait_for(group.ready(), timeout_s)
        except TimeoutError:
            remove_placement_group(group)
            alive = {node["NodeID"][:12]: node.get("Resources", {}) for node in self._nodes()}
            raise PlacementShortfall(
                f"no room for {len(bundles)} ranks {bundles} ({plan.placement}) within {timeout_s:g}s;"
                f" alive nodes and their resources: {alive}") from None
        table = placement_group_table(group)
        hosts = {node["NodeID"]: node["NodeManagerAddress"] for node in self._nodes()}
        slots = tuple(Slot(node, hosts.get(node, "127.0.0.1"), index, group)
                      for index, node in sorted(table["bundles_to_node_id"].items()))
        return RayPlacement(group, slots)

    async def spawn(self, plan: GroupPlan, rank: RankSpec, slot: Slot, values: dict[str, str]) -> RankProcess:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        actor = self._runner.options(
            num_cpus=rank.resources.cpus, num_gpus=rank.resources.gpus,
            scheduling_strategy=PlacementGroupSchedulingStrategy(_group(slot), placement_group_bundle_index=slot.index),
        ).remote()
        try:
            info = await actor.start.remote(list(rank.argv), values, dict(rank.env), slot.host, rank.port)
        except self._ray.exceptions.RayError as exc:
            raise OSError(f"rank {rank.index} could not start on node {slot.node_id[:12]}: {exc}") from None
        self._log.info("rank started", extra={"group": plan.name, "rank": rank.index, "role": rank.role,
                                              "node": slot.node_id, "pid": info["pid"], "port": info["port"]})
        return RayRank(actor, info, slot, self._ray)

    async def release(self, placement: object) -> None:
        from ray.util.placement_group import remove_placement_group

        assert isinstance(placement, RayPlacement)
        remove_placement_group(placement.group)


def _group(slot: Slot) -> Any:
    return slot.handle


def _bundle(rank: RankSpec) -> dict[str, float]:
    bundle = {"CPU": rank.resources.cpus}
    if rank.resources.gpus:
        bundle["GPU"] = float(rank.resources.gpus)
    return bundle
