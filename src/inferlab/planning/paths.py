"""The capstone's four ways to run a coding-assistant lab, as financial-model inputs.

Each path is a replica (model, format, devices, engine), a way of paying for it (rent, buy, own a
base and rent bursts) and a user base. The replica's capacity comes from InferLab's capacity model
(requests/s one replica serves under the SLO, at the usage profile's token counts); prices, power
and amortisation from the catalogue; usage and business figures are labelled assumptions (E) or
the seed's. :func:`path_inputs` turns a path into :class:`~inferlab.planning.finance.PathInputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from inferlab.planning.capacity import CapacityPlan, Demand, Slo, plan_capacity
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.cost import HOURS_PER_MONTH
from inferlab.planning.deployment import Deployment, resolve_deployment
from inferlab.planning.finance import PathInputs, replicas_for

Payment = Literal["rent", "buy", "burst"]


@dataclass(frozen=True)
class Usage:
    """How the lab's users use it (E: assumptions, varied in the sensitivity analysis)."""

    requests_per_user_month: float = 1500  # ~70 per working day: chat, edits, reviews
    prompt_tokens: int = 1500  # code context sent with a request
    output_tokens: int = 150
    peak_to_average: float = 4.0  # working hours: ~170 of 730 hours carry the load
    slo: Slo = field(default_factory=lambda: Slo(ttft_s=1.5, min_tokens_per_s=20))


@dataclass(frozen=True)
class Replica:
    label: str
    model: str
    gpu: str
    quant: str
    gpus: int
    engine: str = "vllm"
    kv_dtype: str = "fp8"
    capex_usd: float | None = None  # a whole machine when the catalogue has no price for it
    power_kw: float | None = None
    setting: Literal["home", "datacenter"] = "datacenter"
    expert_parallel: bool = False

    def deployment(self, catalogue: Catalogue) -> Deployment:
        return resolve_deployment(catalogue, model=self.model, gpu=self.gpu, quant=self.quant, gpus=self.gpus,
                                  engine=self.engine, kv_dtype=self.kv_dtype, expert_parallel=self.expert_parallel)


@dataclass(frozen=True)
class Path:
    key: str
    title: str
    summary: str
    replica: Replica
    payment: Payment
    start_users: int
    target_users: int
    price_per_user_month: float = 50.0  # the seed's price
    browser_share: float = 0.0
    ramp_months: int = 24
    burst_hours_per_month: float = 176.0  # 8 peak hours x 22 working days (E)
    usage: Usage = field(default_factory=Usage)
    other_usd_per_month: float = 0.0


CODER = "qwen3-coder-480b-a35b"
H100_8 = Replica("Qwen3-Coder-480B-A35B FP8, 8x H100 SXM, vLLM TP8", CODER, "h100-sxm", "fp8", 8)
H100_4 = Replica("Qwen3-Coder-480B-A35B INT4 (AWQ), 4x H100 SXM, vLLM TP4", CODER, "h100-sxm", "int4", 4)
#: The mini lab: two RTX 4090 (launch price 2 x $1,599) in a ~$1,800 host, ~1.05 kW at load (E).
MINI = Replica("Llama-3.1-70B Q4_K_M, 2x RTX 4090, llama.cpp", "llama-3.1-70b", "rtx-4090", "Q4_K_M", 2,
               engine="llama.cpp", kv_dtype="f16", capex_usd=2 * 1599 + 1800, power_kw=1.05, setting="home")

PATHS: tuple[Path, ...] = (
    Path("rent", "1. Rent 4x H100 and prove", "Reserved 4x H100 (INT4 480B coder) for the first 1,000 users, more"
         " replicas rented as the base grows to 5,000; no capital at risk.", H100_4, "rent", 1000, 5000),
    Path("buy", "2. Buy and amortise", "Buy one 8x H100 server (FP8 480B coder) in month 1 and depreciate it over four"
         " years in a colocation rack; rent only if demand outgrows it.", H100_8, "buy", 1000, 5000),
    Path("burst", "3. Own base capacity, burst to cloud", "Own a 4x H100 base (INT4 480B coder); rent 4x H100 replicas"
         " on demand for the working-hour peaks only.", H100_4, "burst", 1000, 5000),
    Path("mini", "4. The mini lab", "2x RTX 4090 at home with a 70B model (llama.cpp, one stream at a time) for 10-20"
         " users on ~$5k; a slower SLO (>= 10 tokens/s, TTFT <= 3 s).", MINI, "buy", 10, 20, ramp_months=12,
         usage=Usage(slo=Slo(ttft_s=3.0, min_tokens_per_s=10))),
)


def replica_capacity(catalogue: Catalogue, path: Path) -> CapacityPlan:
    """What one replica serves under the path's SLO (requests/s), from InferLab's capacity model."""
    d = path.replica.deployment(catalogue)
    u = path.usage
    demand = Demand(requests_per_second=1.0, prompt_tokens=u.prompt_tokens, output_tokens=u.output_tokens)
    return plan_capacity(catalogue, d, demand, u.slo, target_utilisation=1.0)


def _replica_costs(catalogue: Catalogue, path: Path) -> tuple[float, float, float]:
    """Purchase price, power (kW) and on-demand rent ($/GPU-hour) of one replica."""
    r = path.replica
    acc = catalogue.accelerator(r.gpu)
    if r.capex_usd is not None and r.power_kw is not None:
        capex, kw = r.capex_usd, r.power_kw
    elif r.gpus == 8 and acc.node8_purchase is not None:
        capex, kw = acc.node8_purchase.usd, acc.node8_max_kw or 8 * (acc.tdp_w or 0) / 1000
    else:  # a share of an 8-GPU server: the GPUs and their part of chassis, CPUs and network
        node = acc.node8_purchase.usd if acc.node8_purchase else 8 * (acc.purchase.usd if acc.purchase else 0)
        capex, kw = node * r.gpus / 8, (acc.node8_max_kw or 8 * (acc.tdp_w or 0) / 1000) * r.gpus / 8
    price = acc.rental()
    return capex, kw, price.usd_per_hour if price else 0.0


def path_inputs(catalogue: Catalogue, path: Path, *, capacity_rps: float | None = None,
                target_utilisation: float = 0.7) -> PathInputs:
    """The financial model's inputs for a path (``capacity_rps`` overrides the capacity model)."""
    rps = capacity_rps if capacity_rps is not None else replica_capacity(catalogue, path).replica_requests_per_s
    capex, kw, rent = _replica_costs(catalogue, path)
    setting = path.replica.setting
    years = catalogue.economic("amortisation_years." + ("datacenter" if setting == "datacenter" else "consumer"))
    base = PathInputs(
        start_users=path.start_users, target_users=path.target_users, ramp_months=path.ramp_months,
        price_per_user_month=path.price_per_user_month, requests_per_user_month=path.usage.requests_per_user_month,
        peak_to_average=path.usage.peak_to_average, browser_share=path.browser_share,
        replica_requests_per_s=max(rps, 1e-9), target_utilisation=target_utilisation, gpus_per_replica=path.replica.gpus,
        owned_replicas=0, capex_per_replica=capex, amortisation_months=years * 12, power_kw_per_replica=kw,
        idle_power_fraction=IDLE_POWER_FRACTION,
        pue=catalogue.economic(f"pue.{setting}"),
        electricity_usd_per_kwh=catalogue.economic(f"electricity_usd_per_kwh.{setting}"),
        colo_usd_per_kw_month=catalogue.economic("colo_usd_per_kw_month") if setting == "datacenter" else 0.0,
        rent_usd_per_gpu_hour=rent, rented_hours_per_month=HOURS_PER_MONTH,
        cdn_usd_per_user_month=BROWSER_CDN_USD_PER_USER_MONTH,
        other_usd_per_month=path.other_usd_per_month,
    )
    if path.payment == "buy":
        return replace(base, owned_replicas=max(1.0, replicas_for(base, path.target_users)))
    if path.payment == "burst":
        average = replace(base, peak_to_average=1.0)  # own what the average load needs, rent the peaks
        return replace(base, owned_replicas=max(1.0, replicas_for(average, path.target_users)),
                       rented_hours_per_month=path.burst_hours_per_month)
    return base


#: Draw of an idle server as a share of its full-load power (E: host CPUs, fans, NICs and idle GPUs
#: keep roughly a third of an 8-GPU server's ~10 kW).
IDLE_POWER_FRACTION = 0.3

#: The browser's model: Qwen2.5-Coder-1.5B in 4-bit, ~1.0 GB, downloaded again at each of ~2
#: releases a month, CDN egress at $0.02/GB (E: volume CDN prices run $0.01-0.08/GB).
BROWSER_MODEL_GB = 1.0
BROWSER_DOWNLOADS_PER_MONTH = 2.0
CDN_USD_PER_GB = 0.02
BROWSER_CDN_USD_PER_USER_MONTH = BROWSER_MODEL_GB * BROWSER_DOWNLOADS_PER_MONTH * CDN_USD_PER_GB
