from inferlab.coordinator.distributed import DistributedCoordinator
from inferlab.coordinator.engine_process import EngineState, ManagedEngine
from inferlab.coordinator.group import EngineGroup, GroupState
from inferlab.coordinator.locate import EngineCommand, EngineUnavailable, llama_engine_command
from inferlab.coordinator.provider import EngineProvider, PlacementShortfall, RankProcess
from inferlab.coordinator.spec import DeploymentSpec, GroupParallelism, GroupPlan, RankResources, RankSpec

__all__ = [
    "DeploymentSpec",
    "DistributedCoordinator",
    "EngineCommand",
    "EngineGroup",
    "EngineProvider",
    "EngineState",
    "EngineUnavailable",
    "GroupParallelism",
    "GroupPlan",
    "GroupState",
    "ManagedEngine",
    "PlacementShortfall",
    "RankProcess",
    "RankResources",
    "RankSpec",
    "llama_engine_command",
]
