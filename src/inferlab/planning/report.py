"""Write ``docs/economics.md`` from the catalogue and the models (never by hand).

    python -m inferlab.planning.report docs/economics.md
    inferlab plan --report docs/economics.md

Next to the markdown go its charts (``docs/economics/*.svg``) and the financial model as a
workbook with live formulas (``docs/economics.xlsx``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from inferlab.planning import capstone_report as capstone
from inferlab.planning.benchmarks import TOLERANCE, compare_all, compare_known_gaps
from inferlab.planning.catalogue import Catalogue, load_catalogue
from inferlab.planning.engines import LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES
from inferlab.planning.memory import kv_bytes_per_token, kv_cache_bytes
from inferlab.planning.paths import PATHS
from inferlab.planning.scenarios import SCENARIOS, UTILISATION, Scenario, SetupResult, evaluate_setup
from inferlab.planning.seed import reproduce_seed
from inferlab.planning.sensitivity import tornado
from inferlab.planning.workbook import write_workbook

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
    ok = sum(abs(r.ratio - 1) <= TOLERANCE for r in rows)
    stated = sum(r.within_tolerance for r in rows)
    lines = ["## Validation: estimates vs published figures", "",
             (f"{ok} of {len(rows)} estimates ({ok / len(rows):.0%}) are within ±{TOLERANCE:.0%} of the published figure;"
              f" {stated} of {len(rows)} are within their stated error (±{TOLERANCE:.0%} unless the row says why it is"
              " wider: one person's run in a gist, GitHub issue or community README, or an unpublished workload)."
              " `tests/unit/planning/test_throughput_vs_published.py` fails on any figure outside its stated error."
              " The fixed-latency constants (per step, per layer, per MoE layer, per runtime), the NVLink latency, the"
              " batched-server bandwidth efficiency and the FP8 expert-kernel efficiency were fitted to these same"
              " figures (in-sample), so the table shows how far one model with a dozen constants reaches across"
              " engines, GPUs and models, not a blind prediction."), "",
             "| setup | metric | published | estimate | ratio | stated error | source (date) | assumed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        flag = "" if abs(r.ratio - 1) <= TOLERANCE else " **(off)**"
        lines.append(f"| {r.setup} | {r.label} | {r.published:,.2f} | {r.estimate:,.2f} | {r.ratio:.2f}{flag}"
                     f" | ±{r.tolerance:.0%} | {r.source} ({r.date}) | {r.assumed} |")
    lines += ["", "### Known gaps", "",
              ("Published figures the model does not reach within any useful error. They are not in the validation set"
               " above, and they are not dropped: here they stand with the estimate and the reason."), "",
              "| setup | metric | published | estimate | ratio | source (date) | why |", "|---|---|---|---|---|---|---|"]
    for r in compare_known_gaps(catalogue):
        lines.append(f"| {r.setup} | {r.label} | {r.published:,.2f} | {r.estimate:,.2f} | {r.ratio:.2f}"
                     f" | {r.source} ({r.date}) | {r.why} |")
    return [*lines, "", ("Memory: llama.cpp's CPU footprint is weights + KV cache + compute buffer + a runtime overhead of "
                         f"{LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES / 2**20:.1f} MiB measured on llama-server "
                         "(`planning/engines.py`); `tests/integration/planning/test_memory_vs_llama_server.py` checks the "
                         "estimate against the resident memory of a real llama-server at 2k/8k/32k context with f16 and "
                         "q8_0 KV (±10 %)."), ""]


def render(catalogue: Catalogue, chart_dir: str = "economics") -> str:
    """The report's markdown; ``chart_dir`` is where its charts live, relative to the markdown file."""
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
             ("* **Speed**: a decode step = bytes the busiest device reads / (bandwidth x calibrated efficiency), or FLOPs"
             " / (TFLOPS x MFU 0.4) when compute bound, plus the step's fixed latency: engine work per step, a kernel"
             " floor per layer and per MoE layer, tensor-parallel all-reduces and expert-parallel all-to-alls over the"
             " device interconnect (NVLink, Infinity Fabric, PCIe, network: latency x log2(ranks) + bytes / bandwidth)."
             " MoE layers read only the experts the batch touches; with expert parallelism the busiest GPU's experts set"
             " the pace. Speculative decoding is an option (draft passes + one verify pass, the acceptance length an"
             " input). Prefill is compute bound (or, for short prompts and MoE, bound by one read of the touched weights)"
             " plus one step's fixed latency and yields the first token (TTFT); a"
             " saturated server runs as many sequences as its KV pool holds. In brackets: the raw bandwidth bound, the"
             " same bytes at 100 % of the bandwidth with no fixed latency."),
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
    lines += (capstone.catalogue_section(catalogue) + capstone.capstone_speed_section(catalogue)
              + capstone.seed_section(catalogue) + capstone.paths_section(catalogue, chart_dir)
              + capstone.sensitivity_section(catalogue, chart_dir) + workbook_section(chart_dir)
              + kv_section(catalogue) + validation_section(catalogue))
    return "\n".join(lines)


def workbook_section(chart_dir: str) -> list[str]:
    return ["## The financial model as a workbook", "",
            (f"`{chart_dir}.xlsx` (written by `inferlab plan --report`) holds the four paths as live formulas: an"
             " **Inputs** sheet (one column per path, each value with where it comes from), a **P&L** sheet per path"
             " (a row per month: users, revenue, replicas needed, depreciation, energy, colocation, rent, CDN, margin,"
             " cash), and a **Summary** sheet with the break-even month, cash, margin and cost per request as"
             " formulas. Change the price, the users, the capacity of a replica or a GPU's price in Inputs and the"
             " P&L and break-even follow. The Sensitivity and Seed vs InferLab sheets hold values InferLab computed"
             " (they need the speed model). `tests/unit/planning/test_workbook.py` evaluates the workbook with the"
             " `formulas` engine and checks it against the Python model."), ""]


def write_report(path: Path, catalogue: Catalogue) -> list[Path]:
    """Write the markdown, its charts and the workbook; return the files written."""
    chart_dir = path.parent / path.stem
    chart_dir.mkdir(parents=True, exist_ok=True)
    workbook = path.with_suffix(".xlsx")
    write_workbook(workbook, capstone.workbook_paths(catalogue), [tornado(catalogue, p) for p in PATHS],
                   reproduce_seed(catalogue))
    written = [workbook]
    for name, svg in capstone.charts(catalogue).items():
        (chart_dir / name).write_text(svg, encoding="utf-8")
        written.append(chart_dir / name)
    path.write_text(render(catalogue, path.stem), encoding="utf-8")
    return [path, *written]


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path("docs/economics.md")
    for written in write_report(target, load_catalogue()):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
