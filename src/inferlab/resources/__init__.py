"""Resources: per-tenant guarantees, limits and borrowing on each model pool's capacity.

The ``ResourceAllocator`` interface and its in-process implementation (Redis:
``inferlab.resources.redis``), the pure admission rule, pool capacity from replicas,
time-boxed reservations and the usage report.
"""

from inferlab.resources.capacity import (
    CapacityOverride,
    ReplicaCapacity,
    capacity_of,
    llamacpp_capacity,
    managed_llamacpp,
    sglang_capacity,
    vllm_capacity,
)
from inferlab.resources.leases import GrantLeases
from inferlab.resources.memory import MemoryAllocator
from inferlab.resources.model import (
    DEFAULT_SHARE,
    ZERO,
    Amount,
    Grant,
    PoolCapacity,
    PoolConfig,
    PoolUsage,
    Refusal,
    RefusalReason,
    TenantShare,
    TenantUsage,
    request_amount,
)
from inferlab.resources.protocol import ResourceAllocator
from inferlab.resources.report import (
    HardwareOption,
    PoolReport,
    ScalingAdvice,
    ScalingOption,
    TenantReport,
    UsageHistory,
    UsageSample,
    Utilisation,
    hardware_option,
    pool_report,
    scaling_advice,
)
from inferlab.resources.reservations import (
    Conflict,
    MemoryReservationStore,
    Reservation,
    ReservationBook,
    ReservationConflict,
    ReservationStore,
)
from inferlab.resources.rule import PoolTotals, decide

__all__ = [
    "DEFAULT_SHARE",
    "ZERO",
    "Amount",
    "CapacityOverride",
    "Conflict",
    "Grant",
    "GrantLeases",
    "HardwareOption",
    "MemoryAllocator",
    "MemoryReservationStore",
    "PoolCapacity",
    "PoolConfig",
    "PoolReport",
    "PoolTotals",
    "PoolUsage",
    "Refusal",
    "RefusalReason",
    "ReplicaCapacity",
    "Reservation",
    "ReservationBook",
    "ReservationConflict",
    "ReservationStore",
    "ResourceAllocator",
    "ScalingAdvice",
    "ScalingOption",
    "TenantReport",
    "TenantShare",
    "TenantUsage",
    "UsageHistory",
    "UsageSample",
    "Utilisation",
    "capacity_of",
    "decide",
    "hardware_option",
    "llamacpp_capacity",
    "managed_llamacpp",
    "pool_report",
    "request_amount",
    "scaling_advice",
    "sglang_capacity",
    "vllm_capacity",
]
