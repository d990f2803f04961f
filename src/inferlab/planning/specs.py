"""Typed records of the planning catalogue: accelerators, model architectures, formats, prices.

Plain frozen dataclasses. Every figure carries a :class:`SourceRef` (where it comes from, the date
of the figure, its provenance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from inferlab.errors import InvalidRequest

AcceleratorKind = Literal["gpu", "apple_soc", "tpu", "cpu"]
Attention = Literal["gqa", "mla"]

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class SourceRef:
    source: str
    date: str
    provenance: str = "S"


@dataclass(frozen=True)
class Sourced:
    """A number with its source, for defaults and economic constants."""

    value: float
    ref: SourceRef


@dataclass(frozen=True)
class RentalPrice:
    provider: str
    tier: str
    usd_per_hour: float  # per device: one GPU or one TPU chip
    ref: SourceRef


@dataclass(frozen=True)
class BillingTerms:
    """How a provider turns running time into paid time.

    Each running session (start to stop) is rounded up to a multiple of ``increment_s`` and costs at
    least ``minimum_s``; ``scale_to_zero`` (serverless) pays only while requests run; ``committed``
    (reservations, commitments, capacity blocks) pays every hour of the term, used or not.
    """

    ref: SourceRef
    increment_s: float = 3600.0
    minimum_s: float = 0.0
    scale_to_zero: bool = False
    committed: bool = False

    def billed_hours(self, running_hours: float) -> float:
        """Hours paid for one session that runs ``running_hours``."""
        seconds = running_hours * 3600
        increments = math.ceil(round(seconds / self.increment_s, 9))
        return max(self.minimum_s, increments * self.increment_s) / 3600


@dataclass(frozen=True)
class Interconnect:
    """The link between devices that collectives (all-reduce, all-to-all) and stage hand-offs use.

    ``bandwidth_gbps`` is per device and per direction (GB/s); ``latency_s`` the fixed cost of one
    collective step over it (launch and synchronisation of a small message).
    """

    id: str
    name: str
    kind: Literal["nvlink", "infinity_fabric", "pcie", "ici", "network"]
    bandwidth_gbps: float
    latency_s: float
    ref: SourceRef


@dataclass(frozen=True)
class PurchasePrice:
    usd: float  # the midpoint when only a range is known
    usd_range: tuple[float, float] | None
    basis: str
    ref: SourceRef


@dataclass(frozen=True)
class Accelerator:
    id: str
    name: str
    kind: AcceleratorKind
    efficiency_class: str
    bandwidth_gbps: float
    memory_gb: float
    memory_gb_options: tuple[float, ...] = ()
    usable_mib: float | None = None
    usable_fraction: float = 1.0
    tflops: Mapping[str, float] = field(default_factory=dict)
    tdp_w: float | None = None
    purchase: PurchasePrice | None = None
    rentals: tuple[RentalPrice, ...] = ()
    sources: Mapping[str, SourceRef] = field(default_factory=dict)
    node8_purchase: PurchasePrice | None = None  # a whole 8-device server, when known
    node8_max_kw: float | None = None
    interconnect: Interconnect | None = None  # between the devices of one node
    node_devices: int = 8  # devices one node (server) holds; more go over the network

    def memory_bytes(self) -> float:
        """Memory a model may use on one device, in bytes.

        GPU and TPU capacities are sold in binary units (24 GB = 24 GiB); ``usable_mib`` (what
        nvidia-smi shows) wins when known. Unified memory is capped at the share the GPU may use.
        """
        if self.usable_mib is not None:
            return self.usable_mib * MIB
        return self.memory_gb * GIB * self.usable_fraction

    def with_memory(self, memory_gb: float) -> Accelerator:
        """The same device with another memory size (Apple and CPU come in several)."""
        if memory_gb <= 0:
            raise InvalidRequest("memory_gb must be positive", param="memory_gb")
        return replace(self, memory_gb=memory_gb, usable_mib=None)

    def compute_tflops(self, compute: str) -> float | None:
        """Dense TFLOPS for an arithmetic type, falling back to the 16-bit figure."""
        for key in (compute, "fp16", "bf16"):
            if key in self.tflops:
                return self.tflops[key]
        return None

    def source_of(self, figure: str) -> SourceRef:
        return self.sources.get(figure) or self.sources["*"]

    def rental(self, tier: str | None = None) -> RentalPrice | None:
        """The cheapest rental price of ``tier`` (default: on-demand, else the cheapest of any)."""
        if tier is not None:
            matching = [r for r in self.rentals if r.tier == tier]
        else:
            matching = [r for r in self.rentals if r.tier in ("on_demand", "secure")] or list(self.rentals)
        return min(matching, key=lambda r: r.usd_per_hour, default=None)


@dataclass(frozen=True)
class ModelSpec:
    id: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    params_b: float
    max_context: int
    ref: SourceRef
    name: str = ""
    hf: str | None = None
    tied_embeddings: bool = False
    active_params_b: float | None = None
    experts: int = 0
    experts_active: int = 0
    moe_layers: int = 0  # layers with routed experts (0: all layers when the model has experts)
    attention: Attention = "gqa"
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    sliding_window: int | None = None
    sliding_window_layers: int = 0
    native_dtype: str = "bf16"
    notes: str = ""
    weights_bytes: float | None = None  # real tensor bytes, when read from a GGUF file
    weights_format: str | None = None  # the quant type of that file

    @property
    def params(self) -> float:
        return self.params_b * 1e9

    @property
    def active_params(self) -> float:
        return (self.active_params_b or self.params_b) * 1e9

    @property
    def is_moe(self) -> bool:
        return bool(self.experts and self.experts_active and self.active_params_b is not None)

    @property
    def expert_layers(self) -> int:
        """Layers with routed experts (all of them unless the catalogue says fewer)."""
        return (self.moe_layers or self.layers) if self.is_moe else 0


@dataclass(frozen=True)
class WeightFormat:
    name: str
    bits: float  # effective bits per weight used by the estimator
    kind: Literal["dense", "gguf"]
    compute: str  # arithmetic type: fp16 | fp8 | int8 | fp4
    ref: SourceRef
    block_bits: float | None = None


@dataclass(frozen=True)
class KVDtype:
    name: str
    bytes_per_element: float
    ref: SourceRef


@dataclass(frozen=True)
class ApiPrice:
    model: str
    provider: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    ref: SourceRef
