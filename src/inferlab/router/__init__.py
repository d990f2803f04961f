"""Which replica serves a request: pools, strategies, health, load signals, failover.

A pool hands out slots at once or not at all (``BackendPool.try_acquire``) and signals when
capacity frees; waiting for a slot, and in what order, is the scheduler's (``inferlab.scheduler``).
"""

from inferlab.router.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from inferlab.router.failover import Failover, OpenStream, is_replica_fault
from inferlab.router.health import HealthMonitor, HealthPolicy
from inferlab.router.load import EngineKind, EngineLoad, parse_load, parse_prometheus
from inferlab.router.pool import (
    BackendPool,
    CapacityListener,
    Lease,
    ModelRouter,
    NoReplicaAvailable,
    NullPoolObserver,
    PoolObserver,
)
from inferlab.router.prefix_index import PrefixIndex, block_hashes, prompt_text
from inferlab.router.protocol import ReplicaView, RoutingRequest, RoutingStrategy
from inferlab.router.replica import Outcome, Replica, ReplicaEndpoint
from inferlab.router.retry import RetryBudget, RetryPolicy
from inferlab.router.scraper import LoadScraper
from inferlab.router.strategies import (
    STRATEGY_NAMES,
    LatencyEwmaStrategy,
    LeastOutstandingStrategy,
    PowerOfTwoStrategy,
    PrefixAwareStrategy,
    PrefixPolicy,
    RoundRobinStrategy,
    SessionAffinityStrategy,
    build_strategy,
)

__all__ = [
    "STRATEGY_NAMES",
    "BackendPool",
    "BreakerPolicy",
    "BreakerState",
    "CapacityListener",
    "CircuitBreaker",
    "EngineKind",
    "EngineLoad",
    "Failover",
    "HealthMonitor",
    "HealthPolicy",
    "LatencyEwmaStrategy",
    "Lease",
    "LeastOutstandingStrategy",
    "LoadScraper",
    "ModelRouter",
    "NoReplicaAvailable",
    "NullPoolObserver",
    "OpenStream",
    "Outcome",
    "PoolObserver",
    "PowerOfTwoStrategy",
    "PrefixAwareStrategy",
    "PrefixIndex",
    "PrefixPolicy",
    "Replica",
    "ReplicaEndpoint",
    "ReplicaView",
    "RetryBudget",
    "RetryPolicy",
    "RoundRobinStrategy",
    "RoutingRequest",
    "RoutingStrategy",
    "SessionAffinityStrategy",
    "block_hashes",
    "build_strategy",
    "is_replica_fault",
    "parse_load",
    "parse_prometheus",
    "prompt_text",
]
