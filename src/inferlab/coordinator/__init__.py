from inferlab.coordinator.engine_process import EngineState, ManagedEngine
from inferlab.coordinator.locate import EngineCommand, EngineUnavailable, llama_engine_command

__all__ = ["EngineCommand", "EngineState", "EngineUnavailable", "ManagedEngine", "llama_engine_command"]
