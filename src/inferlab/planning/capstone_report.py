"""The capstone's sections of ``docs/economics.md``: the 400B-class coder on 8 GPUs, the seed's
economic model reproduced, the four paths with their P&L and sensitivity, and the charts and
workbook that go with them (:func:`charts`, :func:`workbook_paths`)."""

from __future__ import annotations

from dataclasses import replace

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.charts import lines_svg, tornado_svg
from inferlab.planning.finance import PathResult, run_path
from inferlab.planning.memory import estimate_memory, kv_bytes_per_token
from inferlab.planning.paths import H100_4, H100_8, PATHS, Path, Usage, path_inputs, replica_capacity
from inferlab.planning.seed import SEED, reproduce_seed
from inferlab.planning.sensitivity import tornado
from inferlab.planning.specs import GIB
from inferlab.planning.speculative import PUBLISHED_ACCEPTANCE, Speculation
from inferlab.planning.throughput import estimate_throughput
from inferlab.planning.workbook import WorkbookPath

MOE_MODELS = ("qwen3-coder-480b-a35b", "qwen3-coder-30b-a3b", "qwen3-235b-a22b", "glm-4.5", "kimi-k2", "deepseek-v3",
              "gpt-oss-120b", "llama-4-maverick", "llama-4-scout")
#: Speculative decoding shown for the capstone model: EAGLE-3 style, 3 draft tokens, the acceptance
#: length published for a comparable MoE coder draft (Maverick, coding) and a one-layer head + LM head.
CAPSTONE_SPECULATION = Speculation(draft_tokens=3, acceptance_length=2.94, draft_params_b=1.4)
_USAGE = Usage()


def _usd(value: float) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def catalogue_section(catalogue: Catalogue) -> list[str]:
    lines = ["## Open-weight MoE models a lab would consider", "",
             ("Architecture numbers as published (config.json or its faithful mirrors; the catalogue keeps each source"
              " and date). KV per token: f16, all layers."), "",
             ("| model | total / active params | layers (MoE) | experts (routed per token) | attention | KV per token"
              " | source |"),
             "|---|---|---|---|---|---|---|"]
    for model_id in MOE_MODELS:
        m = catalogue.model(model_id)
        attention = (f"MLA {m.kv_lora_rank}+{m.qk_rope_head_dim}" if m.attention == "mla"
                     else f"{m.heads} / {m.kv_heads} x {m.head_dim}")
        lines.append(f"| {m.name or m.id} | {m.params_b:g}B / {m.active_params_b:g}B | {m.layers} ({m.expert_layers}) |"
                     f" {m.experts} ({m.experts_active}) | {attention} | {kv_bytes_per_token(m, 2) / 1024:,.0f} KiB"
                     f" | {m.ref.source} ({m.ref.date}) |")
    return [*lines, ""]


def capstone_speed_section(catalogue: Catalogue) -> list[str]:
    lines = ["## The capstone: Qwen3-Coder-480B-A35B on 8 GPUs", "",
             ("Per-user decode speed and TTFT for 1,500-token prompts, from the speed model with each step's fixed"
              " latency (see Validation for its error on published 8-GPU figures). EP: experts placed whole on the GPUs"
              " (vLLM `--enable-expert-parallel`); the busiest GPU sets the pace. Speculative decoding: 3 draft tokens,"
              f" {CAPSTONE_SPECULATION.acceptance_length:g} accepted per step"
              f" ({PUBLISHED_ACCEPTANCE[1].ref.source}, {PUBLISHED_ACCEPTANCE[1].ref.date}); an input, not a promise."),
             "", ("| setup | fits (GiB per GPU) | concurrency | tok/s per user | with speculation | TTFT"
                  " | fixed latency per step |"),
             "|---|---|---|---|---|---|---|"]
    for replica in (H100_8, replace(H100_8, expert_parallel=True), H100_4):
        d = replica.deployment(catalogue)
        fit = estimate_memory(catalogue, d, 8192)
        for batch in (1, 8, 64):
            plain = estimate_throughput(catalogue, d, prompt_tokens=1500, output_tokens=150, concurrency=batch)
            fast = estimate_throughput(catalogue, d, prompt_tokens=1500, output_tokens=150, concurrency=batch,
                                       speculation=CAPSTONE_SPECULATION)
            lines.append(f"| {d.label()} | {fit.required / GIB:.1f} / {fit.budget / GIB:.1f} | {batch} |"
                         f" {plain.tokens_per_s_per_stream:.0f} | {fast.tokens_per_s_per_stream:.0f} |"
                         f" {(plain.ttft_s or 0) * 1000:,.0f} ms | {plain.step_fixed_s * 1000:.1f} ms |")
    return [*lines, ""]


def seed_section(catalogue: Catalogue) -> list[str]:
    lines = ["## The seed's economic model, reproduced", "",
             (f"The seed's figures as it states them (8x H100 ~${SEED.capex_8x_h100:,.0f}, 4x H100 with optimisation"
              f" ~${SEED.capex_4x_h100:,.0f}, reserved rental ~${SEED.rent_per_month[0]:,.0f}-{SEED.rent_per_month[1]:,.0f}"
              f"/month, {SEED.users:,} users x ${SEED.price_per_user_month:.0f}/month, {SEED.target_users:,} users"
              f" target, {SEED.browser_share:.0%} of requests in the browser), next to what InferLab computes from its"
              " catalogue, speed, capacity and cost models. Usage (requests per user, peak factor) is InferLab's"
              " assumption (E), shown in the Inputs sheet and varied below."), "",
             "| figure | the seed | InferLab | verdict | why |", "|---|---|---|---|---|"]
    for c in reproduce_seed(catalogue):
        lines.append(f"| {c.figure} | {c.seed} | {c.inferlab} | **{c.verdict}** | {c.why} |")
    return [*lines, ""]


def _results(catalogue: Catalogue) -> list[tuple[Path, PathResult]]:
    return [(p, run_path(path_inputs(catalogue, p))) for p in PATHS]


def paths_section(catalogue: Catalogue, chart_dir: str) -> list[str]:
    lines = ["## Four paths", "",
             ("Each path as a monthly P&L over 36 months (`docs/economics.xlsx` holds the same model as live formulas):"
              " revenue, depreciation of what is bought in month 1, power and colocation of owned servers, rent of"
              " what is rented, CDN for the browser model. Staff and other costs are not in the seed's model and are"
              " 0 here (an input in the workbook). Usage (E): "
              f"{_USAGE.requests_per_user_month:,.0f} requests per user a month of {_USAGE.prompt_tokens:,} prompt +"
              f" {_USAGE.output_tokens} output tokens, {_USAGE.peak_to_average:g}x the average at the peak; a replica"
              f" serves what it can under TTFT <= {_USAGE.slo.ttft_s:g} s and >= {_USAGE.slo.min_tokens_per_s:g}"
              " tokens/s per stream and is sized to run at 70 % of that at the peak. Users grow linearly from"
              " the start to the target over 24 months (mini lab: 12)."), "",
             ("| path | replica | serves (requests/s at the SLO) | bought | month 1: cost / margin | month 36: users, cost,"
              " margin | cost per request (m36) | cash break-even | cash after 36 months |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for path, r in _results(catalogue):
        cap = replica_capacity(catalogue, path)
        first, last = r.months[0], r.final
        lines.append(
            f"| {path.title} | {path.replica.label} | {cap.replica_requests_per_s:.2f} (batch {cap.batch_per_replica},"
            f" {cap.limited_by}) | {_usd(r.upfront_usd)} | {_usd(first.total_cost)} / {_usd(first.operating_margin)} |"
            f" {last.users:,.0f}, {_usd(last.total_cost)}, {_usd(last.operating_margin)} | ${last.cost_per_request:.4f} |"
            f" {'month ' + str(r.break_even_month) if r.break_even_month else 'not within 36 months'} |"
            f" {_usd(last.cumulative_cash)} |")
    lines += ["", *(f"* **{p.title}**: {p.summary}" for p in PATHS), "",
              f"![Cumulative cash of the three H100 paths]({chart_dir}/cumulative-cash.svg)", ""]
    return lines


def sensitivity_section(catalogue: Catalogue, chart_dir: str) -> list[str]:
    lines = ["## Sensitivity", "",
             ("Each input moved to a low and a high value, everything else at its base; the outcome is the cumulative"
              " cash after 36 months. Model size reruns InferLab's speed and capacity models with a smaller and a"
              " larger open model on the same GPUs (no bar when it does not fit)."), ""]
    for path in PATHS:
        t = tornado(catalogue, path)
        lines += [f"![Tornado: {path.title}]({chart_dir}/tornado-{path.key}.svg)", "",
                  f"| {path.title}: input | low | cash at low | high | cash at high |", "|---|---|---|---|---|"]
        for b in t.bars:
            low = "-" if b.low is None else _usd(b.low)
            high = "does not fit" if b.high is None else _usd(b.high)
            lines.append(f"| {b.lever} | {b.low_label} | {low} | {b.high_label} | {high} |")
        lines.append("")
    return lines


def charts(catalogue: Catalogue) -> dict[str, str]:
    """The report's SVG charts by file name."""
    files = {f"tornado-{p.key}.svg": tornado_svg(tornado(catalogue, p)) for p in PATHS}
    series = [(p.title, [m.cumulative_cash for m in r.months]) for p, r in _results(catalogue) if p.key != "mini"]
    files["cumulative-cash.svg"] = lines_svg("Cumulative cash, 1,000 to 5,000 users at $50", series, "cumulative cash")
    return files


def workbook_paths(catalogue: Catalogue) -> list[WorkbookPath]:
    return [WorkbookPath(p.key, p.title, path_inputs(catalogue, p)) for p in PATHS]
