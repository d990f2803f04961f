"""The guide's deployment scenarios, evaluated: fit, speed, cost per 1M tokens, break-even.

Scenarios are immutable data; :func:`evaluate_setup` runs the memory, throughput and cost models
on one setup. Figures the catalogue lacks (Apple/CPU machine prices and power) are report
assumptions, each labelled with its provenance.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.cost import (
    HOURS_PER_MONTH,
    OwnedCosts,
    Setting,
    compare_tco,
    default_owned_costs,
    owned_monthly,
)
from inferlab.planning.deployment import resolve_deployment
from inferlab.planning.memory import estimate_memory, max_context
from inferlab.planning.specs import GIB, SourceRef
from inferlab.planning.throughput import estimate_throughput, max_throughput

#: Utilisation assumed for cost per token (E): a home box busy ~6 h a day; a rented or racked
#: server at the low end of the 50-65 % break-even rule of thumb.
UTILISATION: dict[str, float] = {"home": 0.25, "datacenter": 0.5}
PROMPT_TOKENS, OUTPUT_TOKENS = 512, 256


@dataclass(frozen=True)
class MachineAssumption:
    """Price and power of a whole machine the catalogue has no figure for."""

    purchase_usd: float
    power_w: float
    ref: SourceRef


MAC_MINI_M1_16GB = MachineAssumption(
    899, 39, SourceRef(
        "Mac mini M1 launch price $699 + $200 for 16 GB (Apple, 2020-11); max power 39 W (Apple support)", "2020-11", "S"
    )
)
CPU_DESKTOP = MachineAssumption(
    800, 150, SourceRef("report assumption: desktop with 16 GB DDR4, ~150 W under load", "2026-11", "E")
)


@dataclass(frozen=True)
class Setup:
    label: str
    model: str
    gpu: str
    quant: str
    engine: str = "llama.cpp"
    gpus: int = 1
    kv_dtype: str = "f16"
    memory_gb: float | None = None
    context: int = 8192
    setting: Setting = "home"
    machine: MachineAssumption | None = None
    expert_parallel: bool = False


@dataclass(frozen=True)
class Scenario:
    title: str
    summary: str
    setups: tuple[Setup, ...]


@dataclass(frozen=True)
class SetupResult:
    setup: Setup
    fits: bool
    required_gib: float  # per device
    usable_gib: float  # per device
    max_context: int
    tokens_per_s: float  # one stream
    bandwidth_bound_tokens_per_s: float  # one stream at 100 % of the memory bandwidth
    ttft_s: float | None
    saturated_tokens_per_s: float
    saturated_batch: int
    owned_usd_per_mtok: float | None
    rented_usd_per_mtok: float | None
    rent_usd_per_hour: float | None
    breakeven_utilisation: float | None
    breakeven_months: float | None
    api_breakeven_months: tuple[float | None, float | None]  # owned vs an API (cheapest, dearest price)
    api_prices: tuple[float, float] | None  # output $/1M tokens of comparable APIs: cheapest, dearest


_7B = "qwen2.5-7b"
_CODER = "qwen3-coder-480b-a35b"
_30B = "qwen2.5-coder-32b"
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("1. A 7B model on a small GPU, a Mac or a CPU", "Qwen2.5-7B, Q4_K_M GGUF, 8k context, llama.cpp.", (
        Setup("RTX 3060 12 GB", _7B, "rtx-3060-12gb", "Q4_K_M"),
        Setup("Apple M1 16 GB", _7B, "apple-m1", "Q4_K_M", memory_gb=16, machine=MAC_MINI_M1_16GB),
        Setup("CPU, DDR4-3200 16 GB", _7B, "cpu-ddr4-3200", "Q4_K_M", memory_gb=16, machine=CPU_DESKTOP),
    )),
    Scenario("2. A 30B-class model on one workstation GPU", "Qwen2.5-Coder-32B, Q4_K_M GGUF, 8k context, llama.cpp.", (
        Setup("RTX 4090 24 GB", _30B, "rtx-4090", "Q4_K_M"),
        Setup("RTX A4000 16 GB", _30B, "rtx-a4000", "Q4_K_M"),
        Setup("2x RTX A4000 (layer split)", _30B, "rtx-a4000", "Q4_K_M", gpus=2),
    )),
    Scenario("3. A 70B model on 2-4 GPUs", "Llama-3.1-70B, 8k context.", (
        Setup("2x RTX 4090, Q4_K_M, llama.cpp", "llama-3.1-70b", "rtx-4090", "Q4_K_M", gpus=2),
        Setup("1x H100 SXM, FP16, vLLM", "llama-3.1-70b", "h100-sxm", "fp16", "vllm", 1, setting="datacenter"),
        Setup("2x H100 SXM, FP16, vLLM TP2", "llama-3.1-70b", "h100-sxm", "fp16", "vllm", 2, setting="datacenter"),
        Setup("2x H100 SXM, FP8, vLLM TP2", "llama-3.1-70b", "h100-sxm", "fp8", "vllm", 2, setting="datacenter"),
        Setup("4x A100 80 GB, BF16, vLLM TP4", "llama-3.1-70b", "a100-80gb-sxm", "bf16", "vllm", 4, setting="datacenter"),
    )),
    Scenario("4. A ~400B model on 8 data-centre GPUs", "8k context, vLLM tensor parallel 8 (EP: experts placed whole on"
             " the GPUs). Speeds include each step's fixed latency (engine, per-layer kernels, NVLink all-reduces and"
             " expert all-to-alls), which dominates when each GPU reads only a few GB per token; the speed model is"
             " checked against published 8-GPU figures (see Validation).", (
        Setup("Llama-3.1-405B FP8 on 8x H100", "llama-3.1-405b", "h100-sxm", "fp8", "vllm", 8, setting="datacenter"),
        Setup("Llama-3.1-405B INT4 (AWQ) on 8x A100 80 GB", "llama-3.1-405b", "a100-80gb-sxm", "int4", "vllm", 8,
              setting="datacenter"),
        Setup("Llama-4-Maverick (400B MoE) FP8 on 8x H100", "llama-4-maverick", "h100-sxm", "fp8", "vllm", 8,
              setting="datacenter"),
        Setup("Qwen3-Coder-480B-A35B FP8 on 8x H100", _CODER, "h100-sxm", "fp8", "vllm", 8, "fp8", setting="datacenter"),
        Setup("Qwen3-Coder-480B-A35B FP8 on 8x H100, EP", _CODER, "h100-sxm", "fp8", "vllm", 8, "fp8",
              setting="datacenter", expert_parallel=True),
        Setup("Qwen3-Coder-480B-A35B INT4 (AWQ) on 4x H100", _CODER, "h100-sxm", "int4", "vllm", 4, "fp8",
              setting="datacenter"),
    )),
    Scenario("5. The TPU alternative (rented by the chip-hour)", "vLLM / JetStream on Cloud TPU, 8k context.", (
        Setup("Llama-3.1-8B BF16 on 1x TPU v6e", "llama-3.1-8b", "tpu-v6e", "bf16", "vllm", 1, setting="datacenter"),
        Setup("Llama-3.1-70B BF16 on TPU v6e-8", "llama-3.1-70b", "tpu-v6e", "bf16", "vllm", 8, setting="datacenter"),
        Setup("Llama-3.1-70B INT8 on TPU v5e-8", "llama-3.1-70b", "tpu-v5e", "int8", "vllm", 8, setting="datacenter"),
    )),
)


def _owned(catalogue: Catalogue, setup: Setup, d_owned: OwnedCosts | None) -> OwnedCosts | None:
    if setup.machine is None:
        return d_owned
    setting = setup.setting
    return OwnedCosts(
        purchase_usd=setup.machine.purchase_usd,
        amortisation_years=catalogue.economic("amortisation_years.consumer"),
        power_w=setup.machine.power_w,
        pue=catalogue.economic(f"pue.{setting}"),
        electricity_usd_per_kwh=catalogue.economic(f"electricity_usd_per_kwh.{setting}"),
    )


def api_prices_for(catalogue: Catalogue, model_id: str) -> tuple[float, float] | None:
    """Cheapest and dearest listed API output price per 1M tokens for a model of that size (±25 %)."""
    size_of = {"llama-3.1-8b": 8, "llama-3.1-405b": 405, "70b-class": 70}
    params = catalogue.model(model_id).params_b
    matches = [p.output_usd_per_mtok for p in catalogue.api_prices if abs(size_of.get(p.model, 0) - params) / params < 0.25]
    return (min(matches), max(matches)) if matches else None


def api_breakeven_months(owned: OwnedCosts, tokens_per_s: float, utilisation: float, api_usd_per_mtok: float) -> float | None:
    """Months until owning costs less than buying the same tokens from an API (None: never)."""
    tokens_month = tokens_per_s * 3600 * HOURS_PER_MONTH * utilisation
    monthly = owned_monthly(owned, utilisation)
    saving = tokens_month / 1e6 * api_usd_per_mtok - (monthly.total - monthly.capital)
    return owned.purchase_usd / saving if saving > 0 else None


def evaluate_setup(catalogue: Catalogue, setup: Setup) -> SetupResult:
    d = resolve_deployment(catalogue, model=setup.model, gpu=setup.gpu, quant=setup.quant, kv_dtype=setup.kv_dtype,
                           engine=setup.engine, gpus=setup.gpus, memory_gb=setup.memory_gb,
                           expert_parallel=setup.expert_parallel)
    memory = estimate_memory(catalogue, d, setup.context)
    single = estimate_throughput(catalogue, d, prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS)
    saturated = max_throughput(catalogue, d, isl=PROMPT_TOKENS, osl=OUTPUT_TOKENS)
    utilisation = UTILISATION[setup.setting]
    owned = _owned(catalogue, setup, default_owned_costs(catalogue, d, setup.setting))
    tco = compare_tco(catalogue, d, saturated.output_tokens_per_s, utilisation=utilisation, setting=setup.setting, owned=owned)
    api = api_prices_for(catalogue, setup.model)
    api_months: tuple[float | None, float | None] = (None, None)
    if owned is not None and api is not None:
        low, high = (api_breakeven_months(owned, saturated.output_tokens_per_s, utilisation, p) for p in api)
        api_months = (low, high)
    return SetupResult(
        setup=setup,
        fits=memory.fits,
        required_gib=memory.required / GIB,
        usable_gib=memory.budget / GIB,
        max_context=max_context(catalogue, d).value,
        tokens_per_s=single.tokens_per_s_per_stream,
        bandwidth_bound_tokens_per_s=single.bandwidth_bound_tokens_per_s_per_stream,
        ttft_s=single.ttft_s,
        saturated_tokens_per_s=saturated.output_tokens_per_s,
        saturated_batch=saturated.batch,
        owned_usd_per_mtok=tco.owned_usd_per_mtok,
        rented_usd_per_mtok=tco.rented_usd_per_mtok,
        rent_usd_per_hour=tco.rent_usd_per_hour,
        breakeven_utilisation=tco.breakeven_utilisation,
        breakeven_months=tco.breakeven_months,
        api_breakeven_months=api_months,
        api_prices=api,
    )
