"""Write ``docs/economics.md`` from the catalogue and the models (never by hand).

    python -m inferlab.planning.report docs/economics.md
    inferlab plan --report docs/economics.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from inferlab.planning.benchmarks import TOLERANCE, compare_all
from inferlab.planning.business import BusinessCase, evaluate_business
from inferlab.planning.capacity import Slo, demand_from_users, plan_capacity
from inferlab.planning.catalogue import Catalogue, load_catalogue
from inferlab.planning.cost import HOURS_PER_MONTH, default_owned_costs, owned_monthly
from inferlab.planning.deployment import resolve_deployment
from inferlab.planning.engines import LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES
from inferlab.planning.memory import kv_bytes_per_token, kv_cache_bytes
from inferlab.planning.scenarios import SCENARIOS, UTILISATION, Scenario, SetupResult, evaluate_setup

KV_MODELS = ("smollm2-135m", "qwen2.5-7b", "llama-3.1-8b", "phi-3-mini-4k", "gemma-2-9b", "qwen2.5-32b",
             "llama-3.1-70b", "mixtral-8x7b", "llama-3.1-405b", "deepseek-v3")


def _f(value: float | None, fmt: str, none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _breakeven(r: SetupResult) -> str:
    parts = []
    if r.breakeven_utilisation is not None or r.breakeven_months is not None:
        parts.append(f"vs renting: {_f(r.breakeven_utilisation and r.breakeven_utilisation * 100, '.0f', 'never ')}% util,"
                     f" {_f(r.breakeven_months, '.0f', 'never')} months")
    elif r.rented_usd_per_mtok is not None and r.owned_usd_per_mtok is not None:
        parts.append("vs renting: never")
    if r.api_prices is not None and r.owned_usd_per_mtok is not None:
        pairs = dict(zip(r.api_prices, r.api_breakeven_months, strict=True))  # one entry when both prices are equal
        for price, months in pairs.items():
            parts.append(f"vs API ${price:.2f}/M: {_f(months, '.0f', 'never')}{' months' if months is not None else ''}")
    if r.owned_usd_per_mtok is None:
        parts.append("rent only")
    return "; ".join(parts)


def scenario_section(catalogue: Catalogue, scenario: Scenario) -> list[str]:
    lines = [f"### {scenario.title}", "", scenario.summary, "",
             ("| setup | fits (need / usable GiB per device) | max context | tok/s, 1 stream (raw bound) | TTFT"
              " | saturated tok/s (batch)"
             " | $/1M owned | $/1M rented | break-even |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for setup in scenario.setups:
        r = evaluate_setup(catalogue, setup)
        fit = f"{'yes' if r.fits else '**no**'} ({r.required_gib:.1f} / {r.usable_gib:.1f})"
        if not r.fits:
            lines.append(f"| {setup.label} | {fit} | {r.max_context:,} | - | - | - | - | - | does not fit |")
            continue
        lines.append(
            f"| {setup.label} | {fit} | {r.max_context:,} | {r.tokens_per_s:.1f} ({r.bandwidth_bound_tokens_per_s:.0f})"
            f" | {_ms(r.ttft_s)}"
            f" | {r.saturated_tokens_per_s:,.0f} ({r.saturated_batch}) | {_f(r.owned_usd_per_mtok, ',.2f')}"
            f" | {_f(r.rented_usd_per_mtok, ',.2f')} | {_breakeven(r)} |"
        )
    return [*lines, ""]


#: Usage profiles for the CodeLab sizing (E): share of users active at the peak, requests per active
#: user per minute, prompt and output tokens per request.
CODELAB_PROFILES = (
    ("chat and review", 0.10, 2.0, 1500, 150),
    ("autocomplete-heavy", 0.30, 10.0, 2000, 64),
)


def codelab_section(catalogue: Catalogue) -> list[str]:
    lines = ["## The CodeLab business case", "",
             ("The guide's case: 1,000 developers pay $50/month for a code assistant; renting the GPUs costs about "
             "$20-30k/month. Target: 5,000 users."), "",
             "| users | revenue/month | GPU rent/month (guide) | margin/month | margin | break-even users |",
             "|---|---|---|---|---|---|"]
    for rent in (20_000, 30_000):
        b = evaluate_business(BusinessCase(users=1000, price_per_user_month=50, infra_usd_per_month=rent))
        lines.append(f"| 1,000 | ${b.revenue_per_month:,.0f} | ${rent:,.0f} | ${b.margin_per_month:,.0f}"
                     f" | {b.margin_fraction:.0%} | {b.breakeven_users:,} |")
    return [*lines, "", *_codelab_sizing(catalogue), *_codelab_buy(catalogue)]


def _codelab_sizing(catalogue: Catalogue) -> list[str]:
    d = resolve_deployment(catalogue, model="qwen2.5-coder-32b", gpu="h100-sxm", quant="fp8", engine="vllm")
    slo = Slo(ttft_s=1.5, min_tokens_per_s=20)
    price = d.accelerator.rental()
    assert price is not None  # the shipped catalogue prices H100s
    per_gpu_month = price.usd_per_hour * HOURS_PER_MONTH
    lines = [(f"At {price.usd_per_hour:.2f} $/GPU-hour ({price.provider} {price.tier}, {price.ref.date}) the guide's "
             f"$20-30k/month rents {20_000 / per_gpu_month:.0f}-{30_000 / per_gpu_month:.0f} H100s. Sizing with the capacity "
             f"planner: {d.label()}, SLO TTFT <= {slo.ttft_s} s and >= {slo.min_tokens_per_s:.0f} tokens/s per stream, "
             "replicas at 70 % of capacity; usage profiles are assumptions (E)."), "",
             "| profile | users | peak req/s | GPUs | users per GPU | rent/month | revenue/month | margin |",
             "|---|---|---|---|---|---|---|---|"]
    for name, active, rpm, prompt, output in CODELAB_PROFILES:
        for users in (1000, 5000):
            demand = demand_from_users(users, active_fraction=active, requests_per_active_user_per_minute=rpm,
                                       prompt_tokens=prompt, output_tokens=output)
            plan = plan_capacity(catalogue, d, demand, slo)
            rent = plan.gpus * per_gpu_month
            b = evaluate_business(BusinessCase(users=users, price_per_user_month=50, infra_usd_per_month=rent))
            lines.append(f"| {name} ({active:.0%} active, {rpm:g}/min, {prompt}+{output} tok) | {users:,}"
                         f" | {demand.requests_per_second:.1f} | {plan.gpus} | {_f(plan.users_per_gpu, ',.0f')}"
                         f" | ${rent:,.0f} | ${b.revenue_per_month:,.0f} | {b.margin_fraction:.0%} |")
    return [*lines, ""]


def _codelab_buy(catalogue: Catalogue) -> list[str]:
    d = resolve_deployment(catalogue, model="qwen2.5-coder-32b", gpu="h100-sxm", quant="fp8", engine="vllm", gpus=8)
    owned = default_owned_costs(catalogue, d, "datacenter")
    assert owned is not None
    opex = owned_monthly(owned, 1.0)
    lines = [("Buying instead of renting: one 8x H100 server "
             f"(${owned.purchase_usd:,.0f}, {owned.power_w / 1000:.1f} kW, PUE {owned.pue}, "
             f"${owned.electricity_usd_per_kwh}/kWh, colocation ${owned.colo_usd_per_kw_month:.0f}/kW-month) costs "
             f"${opex.energy + opex.colocation:,.0f}/month to run flat out."), "",
             "| rent replaced/month | payback of the server (months) |", "|---|---|"]
    for rent in (20_000, 30_000):
        saving = rent - (opex.energy + opex.colocation)
        b = evaluate_business(BusinessCase(users=1, price_per_user_month=saving, infra_usd_per_month=0,
                                           upfront_usd=owned.purchase_usd))
        lines.append(f"| ${rent:,.0f} | {_f(b.payback_months, '.1f', 'never')} |")
    return [*lines, ""]


def kv_section(catalogue: Catalogue) -> list[str]:
    lines = ["## KV cache per token (f16, all layers, one sequence)", "",
             "2 x layers x KV heads x head_dim x 2 bytes (GQA/MHA); layers x (kv_lora_rank + rope dim) x 2 bytes (MLA).", "",
             "| model | layers | KV heads x head_dim | KV per token | 8k context (sliding windows applied) |",
             "|---|---|---|---|---|"]
    for model_id in KV_MODELS:
        m = catalogue.model(model_id)
        per_token = kv_bytes_per_token(m, 2)
        shape = f"MLA {m.kv_lora_rank}+{m.qk_rope_head_dim}" if m.attention == "mla" else f"{m.kv_heads} x {m.head_dim}"
        at_8k = kv_cache_bytes(m, 8192, 2) / 2**30
        lines.append(f"| {m.id} | {m.layers} | {shape} | {per_token / 1024:,.1f} KiB | {at_8k:.2f} GiB |")
    return [*lines, ""]


def validation_section(catalogue: Catalogue) -> list[str]:
    rows = compare_all(catalogue)
    ok = sum(r.within_tolerance for r in rows)
    lines = ["## Validation: estimates vs published figures", "",
             (f"{ok} of {len(rows)} estimates ({ok / len(rows):.0%}) are within ±{TOLERANCE:.0%} of the published figure "
             "(`tests/unit/planning/test_throughput_vs_published.py`)."), "",
             "| setup | metric | published | estimate | ratio | source | assumed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        flag = "" if r.within_tolerance else " **(off)**"
        lines.append(f"| {r.setup} | {r.label} | {r.published:,.2f} | {r.estimate:,.2f} | {r.ratio:.2f}{flag}"
                     f" | {r.source} | {r.assumed} |")
    return [*lines, "", ("Memory: llama.cpp's CPU footprint is weights + KV cache + compute buffer + a runtime overhead of "
                         f"{LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES / 2**20:.1f} MiB measured on llama-server "
                         "(`planning/engines.py`); `tests/integration/planning/test_memory_vs_llama_server.py` checks the "
                         "estimate against the resident memory of a real llama-server at 2k/8k/32k context with f16 and "
                         "q8_0 KV (±10 %)."), ""]


def render(catalogue: Catalogue) -> str:
    lines = ["# Economics of self-hosted inference", "",
             ("_Generated by `inferlab plan --report docs/economics.md` (or `python -m inferlab.planning.report`)"
             " from the planning catalogue; do not edit by hand. Every hardware figure carries its source and date in"
             " `src/inferlab/planning/data/catalogue.yaml`._"), "",
             "## How the numbers are made", "",
             ("* **Fit**: weights (params x bits/weight, GGUF effective bits) + KV cache + compute buffer/activations"
             " + runtime overhead, per device; vLLM-style engines keep `gpu_memory_utilization` (0.9) of the memory"
             " and their activations are the peak of vLLM's profiling batch (`max_num_batched_tokens` x hidden and"
             " intermediate sizes per tensor-parallel rank, plus the sampler's logits), not a share of the weights."
             " A setup that does not fit gets no speed and no price."),
             ("* **Speed**: decode = bytes read per token / (bandwidth x calibrated efficiency), or FLOPs / (TFLOPS x"
             " MFU 0.4) when compute bound; prefill is compute bound; a saturated server runs as many sequences as"
             " its KV pool holds. In brackets: the raw bandwidth bound, the same bytes at 100 % of the bandwidth."),
             ("* **Cost**: saturated tokens/s at the utilisation below; owned = purchase amortised (3 y consumer, 4 y"
             " data centre) + power x PUE x electricity (+ colocation); rented = the hours paid: a serving box is up"
             " 24 h a day, so every hour of the month is paid, busy or not (730 h x on-demand price)."
             " Break-even utilisation compares owning with renting only the busy hours (the box stopped the rest of"
             " each day, billed in the provider's increments)."), "",
             (f"Assumptions: owned power is the accelerators' TDP (the rest of the host is not counted);"
             f" {UTILISATION['home']:.0%} utilisation at home, {UTILISATION['datacenter']:.0%} in a data"
             " centre; requests of 512 prompt + 256 output tokens; home power $0.165/kWh, PUE 1.0; data centre"
             " $0.10/kWh, PUE 1.56, colocation $200/kW-month."), "",
             "## Scenarios", ""]
    for scenario in SCENARIOS:
        lines += scenario_section(catalogue, scenario)
    lines += codelab_section(catalogue) + kv_section(catalogue) + validation_section(catalogue)
    return "\n".join(lines)


def write_report(path: Path, catalogue: Catalogue) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(catalogue), encoding="utf-8")


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path("docs/economics.md")
    write_report(target, load_catalogue())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
