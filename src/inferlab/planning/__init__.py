"""Planning: will it fit, how fast, what does it cost, how many GPUs.

Pure functions over the typed data of :mod:`inferlab.planning.catalogue`; the catalogue itself is
loaded by :func:`load_catalogue` (shipped YAML + the user's files), never at import time.
"""

from inferlab.planning.business import BusinessCase, BusinessResult, evaluate_business
from inferlab.planning.capacity import CapacityPlan, Demand, Slo, demand_from_users, plan_capacity
from inferlab.planning.catalogue import Catalogue, load_catalogue
from inferlab.planning.cost import (
    MonthlyCost,
    OwnedCosts,
    RentalPlan,
    TcoComparison,
    breakeven_months,
    breakeven_utilisation,
    compare_tco,
    default_owned_costs,
    owned_monthly,
    rented_monthly,
    usd_per_million_tokens,
    usd_per_request,
)
from inferlab.planning.deployment import Deployment, Parallelism, resolve_deployment
from inferlab.planning.engines import EngineProfile, engine_profile
from inferlab.planning.finance import PathInputs, PathResult, run_path
from inferlab.planning.gguf import GGUFHeader, model_from_gguf, read_gguf, read_gguf_header
from inferlab.planning.hfconfig import model_from_config, model_from_hf_config
from inferlab.planning.memory import (
    MaxFit,
    MemoryEstimate,
    estimate_memory,
    kv_bytes_per_token,
    kv_cache_bytes,
    max_batch,
    max_context,
    weights_bytes,
)
from inferlab.planning.specs import (
    Accelerator,
    ApiPrice,
    BillingTerms,
    Interconnect,
    KVDtype,
    ModelSpec,
    PurchasePrice,
    RentalPrice,
    Sourced,
    SourceRef,
    WeightFormat,
)
from inferlab.planning.speculative import Speculation
from inferlab.planning.throughput import ThroughputEstimate, estimate_throughput, max_throughput

__all__ = [
    "Accelerator",
    "ApiPrice",
    "BillingTerms",
    "BusinessCase",
    "BusinessResult",
    "CapacityPlan",
    "Catalogue",
    "Demand",
    "Deployment",
    "EngineProfile",
    "GGUFHeader",
    "Interconnect",
    "KVDtype",
    "MaxFit",
    "MemoryEstimate",
    "ModelSpec",
    "MonthlyCost",
    "OwnedCosts",
    "Parallelism",
    "PathInputs",
    "PathResult",
    "PurchasePrice",
    "RentalPlan",
    "RentalPrice",
    "Slo",
    "SourceRef",
    "Sourced",
    "Speculation",
    "TcoComparison",
    "ThroughputEstimate",
    "WeightFormat",
    "breakeven_months",
    "breakeven_utilisation",
    "compare_tco",
    "default_owned_costs",
    "demand_from_users",
    "engine_profile",
    "estimate_memory",
    "estimate_throughput",
    "evaluate_business",
    "kv_bytes_per_token",
    "kv_cache_bytes",
    "load_catalogue",
    "max_batch",
    "max_context",
    "max_throughput",
    "model_from_config",
    "model_from_gguf",
    "model_from_hf_config",
    "owned_monthly",
    "plan_capacity",
    "read_gguf",
    "read_gguf_header",
    "rented_monthly",
    "resolve_deployment",
    "run_path",
    "usd_per_million_tokens",
    "usd_per_request",
    "weights_bytes",
]
