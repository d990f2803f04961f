"""An engine deployment as data: which model, which engine, how it is split, what each rank needs,
how many copies. A provider (``provider.py``) turns it into running engine groups.

A *group* is one copy of the engine: the processes (ranks) that hold one model between them and
live and die together. Rank 0 is the leader, the one that serves HTTP; the others are workers
(llama.cpp ``rpc-server`` processes, Ray worker nodes of a vLLM group, SGLang ranks with
``--node-rank`` > 0). A group is one replica in the router's pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EngineName = Literal["llama.cpp", "vllm", "sglang"]
Readiness = Literal["http", "tcp", "none"]
PlacementStrategy = Literal["pack", "spread", "strict_spread"]


@dataclass(frozen=True, slots=True)
class GroupParallelism:
    """How one group splits the model. ``tensor`` x ``pipeline`` devices in all, over ``nodes``
    machines; llama.cpp splits layers over ``rpc_workers`` extra processes instead."""

    tensor: int = 1
    pipeline: int = 1
    nodes: int = 1
    rpc_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("tensor", "pipeline", "nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.rpc_workers < 0:
            raise ValueError("rpc_workers must be 0 or more")
        if self.devices % self.nodes:
            raise ValueError(f"{self.devices} devices do not divide evenly over {self.nodes} nodes")

    @property
    def devices(self) -> int:
        return self.tensor * self.pipeline

    @property
    def devices_per_node(self) -> int:
        return self.devices // self.nodes


@dataclass(frozen=True, slots=True)
class RankResources:
    """What one rank (one process, or one pod) asks of its node."""

    gpus: int = 0
    cpus: float = 1.0
    memory_gib: float | None = None
    shm_gib: float | None = None  # /dev/shm for NCCL and the engines' worker processes


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    name: str  # the public model name (also the group's name stem)
    model: str  # a GGUF path (llama.cpp) or a checkpoint path / Hugging Face id (vLLM, SGLang)
    engine: EngineName
    parallel: GroupParallelism = GroupParallelism()
    resources: RankResources = RankResources()
    replicas: int = 1
    context: int = 4096
    max_sequences: int = 4
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    gpu_memory_utilization: float | None = None
    threads: int | None = None
    port: int = 8000  # the leader's HTTP port where the provider may choose (Kubernetes pods)
    image: str | None = None  # Kubernetes: the container image
    extra_args: tuple[str, ...] = ()
    placement: PlacementStrategy = "spread"

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError("replicas must be at least 1")
        if self.engine != "llama.cpp" and self.parallel.rpc_workers:
            raise ValueError(f"rpc_workers is a llama.cpp setting; {self.engine} splits with tensor/pipeline")

    @property
    def ranks(self) -> int:
        """Processes (or pods) in one group."""
        return 1 + self.parallel.rpc_workers if self.engine == "llama.cpp" else self.parallel.nodes


@dataclass(frozen=True, slots=True)
class RankSpec:
    """One process of a group, as a template: the provider fills ``{host}``, ``{port}`` (where this
    rank listens), ``{leader_host}``, ``{leader_port}`` (the leader's coordination port) and
    ``{rpc}`` (the workers' ``host:port`` list) when it knows them."""

    index: int
    role: Literal["leader", "worker"]
    argv: tuple[str, ...]
    readiness: Readiness
    health_path: str = "/health"
    env: tuple[tuple[str, str], ...] = ()
    resources: RankResources = RankResources()
    port: int | None = None  # a fixed port (Kubernetes); None: the provider picks a free one


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """Everything needed to start one group: its ranks, workers first then the leader."""

    name: str
    engine: EngineName
    ranks: tuple[RankSpec, ...]
    api_key: str | None = None
    placement: PlacementStrategy = "spread"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def leader(self) -> RankSpec:
        return next(rank for rank in self.ranks if rank.role == "leader")

    @property
    def workers(self) -> tuple[RankSpec, ...]:
        return tuple(rank for rank in self.ranks if rank.role == "worker")


def fill(template: tuple[str, ...], values: dict[str, str]) -> tuple[str, ...]:
    """The argv with its ``{name}`` placeholders replaced (other braces are left as they are)."""
    filled = []
    for arg in template:
        text = arg
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        filled.append(text)
    return tuple(filled)
