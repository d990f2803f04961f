"""``inferlab vram | estimate | cost | plan``: the planning toolkit on the command line.

:func:`register` adds the commands to the project's Typer app. Every command prints rich tables,
or the API's JSON with ``--json``. MODEL is a catalogue id, a ``.gguf`` file or a ``config.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from inferlab.errors import InferLabError
from inferlab.planning import service
from inferlab.planning.catalogue import Catalogue, load_catalogue
from inferlab.planning.gguf import model_from_gguf
from inferlab.planning.hfconfig import model_from_hf_config
from inferlab.planning.report import write_report
from inferlab.planning.schemas import CapacityIn, CostIn, EstimateIn, VramIn, parse

ModelArg = typer.Argument(None, help="catalogue model id, a .gguf file or a Hugging Face config.json")
GpuOpt = typer.Option("rtx-4090", "--gpu", help="catalogue accelerator id")
GpusOpt = typer.Option(1, "--gpus", help="number of devices")
QuantOpt = typer.Option(None, "--quant", help="weight format, e.g. fp16, fp8, int4, Q4_K_M")
KvOpt = typer.Option("f16", "--kv-dtype", help="KV cache type: f16, q8_0, q4_0, fp8...")
EngineOpt = typer.Option("llama.cpp", "--engine", help="llama.cpp, vllm, sglang, trt-llm, tgi, ollama...")
ReportOpt = typer.Option(None, "--report", help="write the economics report (markdown) here, its charts"
                         " (<name>/*.svg) and the financial model (<name>.xlsx) next to it, and exit")
PlanEngineOpt = typer.Option("vllm", "--engine", help="serving engine (capacity plans assume a batching server)")
MemOpt = typer.Option(None, "--memory-gb", help="memory size for Apple/CPU devices")
CatOpt = typer.Option(None, "--catalogue", help="extra catalogue YAML (repeatable)")
JsonOpt = typer.Option(False, "--json", help="print JSON instead of tables")
ContextOpt = typer.Option(None, "--context", "-c", help="context the server holds (tokens); default prompt+output")
TpOpt = typer.Option(None, "--tp", help="tensor-parallel size (default: the engine's split of --gpus)")
PpOpt = typer.Option(None, "--pp", help="pipeline-parallel (layer split) size")
EpOpt = typer.Option(False, "--expert-parallel", help="MoE: place whole experts on the GPUs (vLLM --enable-expert-parallel)")


def load_with_model(model: str | None, extra: list[Path] | None) -> tuple[Catalogue, str]:
    """The catalogue (plus user files) and the model id, reading MODEL from a file if it is one."""
    catalogue = load_catalogue(extra or ())
    if model is None:
        raise typer.BadParameter("MODEL is required")
    path = Path(model)
    if path.suffix == ".gguf":
        spec = model_from_gguf(path)
    elif path.suffix == ".json":
        spec = model_from_hf_config(path)
    else:
        return catalogue, model
    return catalogue.with_model(spec), spec.id


def _deployment(
    model_id: str, gpu: str, gpus: int, quant: str | None, kv_dtype: str, engine: str, memory_gb: float | None,
    expert_parallel: bool = False,
) -> dict[str, Any]:
    return {"model": model_id, "gpu": gpu, "gpus": gpus, "quant": quant, "kv_dtype": kv_dtype, "engine": engine,
            "memory_gb": memory_gb, "expert_parallel": expert_parallel}


def _run(action: Callable[[], dict[str, Any]], as_json: bool, render: Callable[[Console, dict[str, Any]], None],
         refuse_misfit: bool = False) -> None:
    """Run a planning question and print its answer; a deployment that does not fit is refused
    (exit 1, no price) when ``refuse_misfit``, else shown with a warning."""
    console = Console()
    try:
        result = action()
    except InferLabError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    misfit = result.get("fits") is False
    if misfit and refuse_misfit:
        Console(stderr=True).print(f"[red]refused:[/red] {result['reason']}; no price is given for hardware that"
                                   " cannot run the model")
        raise typer.Exit(1)
    if misfit:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] {result['reason']}; the figures below are what it"
                                   " would do if it fitted")
    if not as_json:
        render(console, result)


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _num(value: float | None, fmt: str = ",.2f", none: str = "n/a") -> str:
    return none if value is None else format(value, fmt)


def render_vram(console: Console, r: dict[str, Any]) -> None:
    g = r["per_device_gib"]
    rows = [(k.replace("_", " "), f"{g[k]:.2f} GiB") for k in ("weights", "kv_cache", "compute", "overhead", "required")]
    rows += [("usable per device", f"{g['capacity']:.2f} GiB"), ("engine budget", f"{g['budget']:.2f} GiB")]
    rows += [("KV per token", f"{r['kv_bytes_per_token'] / 1024:.1f} KiB"), ("fits", "yes" if r["fits"] else "NO")]
    rows += [("max context", f"{r['max_context']['value']:,} ({r['max_context']['limited_by']})")]
    rows += [("max batch at context", f"{r['max_batch']['value']:,}")]
    title = f"{r['deployment']} - {r['context']:,} tokens x {r['batch']} (per device, {r['devices']} devices)"
    console.print(_table(title, rows))
    for note in r["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


def render_estimate(console: Console, r: dict[str, Any]) -> None:
    for title, e in (("at the requested concurrency", r["estimate"]), ("saturated server", r["saturated"])):
        rows = [
            ("batch", f"{e['batch']:,}"),
            ("TTFT", _num(e["ttft_s"], ".3f") + " s"),
            ("inter-token latency", f"{e['itl_s'] * 1000:.1f} ms"),
            ("  fixed latency per step", f"{e['step_fixed_s'] * 1000:.2f} ms (engine, layers, collectives)"),
            ("  tokens per step", f"{e['tokens_per_step']:g}"),
            ("tokens/s per stream", f"{e['tokens_per_s_per_stream']:.1f}"),
            ("  raw bandwidth bound", f"{e['bandwidth_bound_tokens_per_s_per_stream']:.1f}"),
            ("output tokens/s (all streams)", f"{e['output_tokens_per_s']:,.0f}"),
            ("  raw bandwidth bound (decode)", f"{e['bandwidth_bound_output_tokens_per_s']:,.0f}"),
            ("prefill tokens/s", _num(e["prefill_tokens_per_s"], ",.0f")),
            ("bound", e["bound"]),
            ("bandwidth efficiency", f"{e['efficiency']['value']:.2f} ({e['efficiency']['source']})"),
        ]
        console.print(_table(f"{e['deployment']} - {title}", rows))
        for note in e["notes"]:
            console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"[dim]raw bandwidth bound: the bytes each token reads at 100 % of {r['bandwidth_gbps']:,.0f} GB/s;"
                  " the speeds above it apply the calibrated bandwidth efficiency[/dim]")


def render_cost(console: Console, r: dict[str, Any]) -> None:
    table = Table(title=f"{r['deployment']} - {r['utilisation']:.0%} utilised, {r['output_tokens_per_s']:,.0f} tok/s busy")
    for col in ("", "owned", "rented"):
        table.add_column(col, justify="right" if col else "left")
    own, rent = r["owned"] or {}, r["rented"] or {}
    for key in ("capital", "energy", "colocation", "rent", "total"):
        table.add_row(f"$/month {key}", _num(own.get(key), ",.0f", "-"), _num(rent.get(key), ",.0f", "-"))
    table.add_row("hours paid / month", "-", _num(r["rented_hours_per_month"], ",.0f", "-"))
    table.add_row("$ per 1M output tokens",
                  _num(r["owned_usd_per_mtok"], ",.3f", "-"), _num(r["rented_usd_per_mtok"], ",.3f", "-"))
    table.add_row("$ per request", _num(r["owned_usd_per_request"], ",.5f", "-"), _num(r["rented_usd_per_request"], ",.5f", "-"))
    console.print(table)
    be_u, be_m = r["breakeven_utilisation"], r["breakeven_months"]
    console.print(f"break-even utilisation: {_num(be_u and be_u * 100, '.0f', 'never')}%  "
                  f"break-even months: {_num(be_m, '.1f', 'never')}")
    for item in r["assumptions"]:
        console.print(f"[dim]assumed: {item}[/dim]")


def render_plan(console: Console, r: dict[str, Any]) -> None:
    p, dmd = r["plan"], r["demand"]
    rows = [
        ("peak requests/s", f"{dmd['requests_per_second']:.2f}"),
        ("feasible", "yes" if p["feasible"] else "NO"),
        ("batch per replica", f"{p['batch_per_replica']:,} (limited by {p['limited_by']})"),
        ("requests/s per replica", f"{p['replica_requests_per_s']:.2f}"),
        ("replicas", f"{p['replicas']:,}"),
        ("GPUs", f"{p['gpus']:,}"),
        ("users per GPU", _num(p["users_per_gpu"], ",.0f")),
        ("TTFT", _num(p["ttft_s"], ".3f") + " s"),
        ("tokens/s per stream", f"{p['tokens_per_s_per_stream']:.1f}"),
    ]
    console.print(_table(f"capacity plan - {p['deployment']}", rows))
    for note in p["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


def register(app: typer.Typer) -> None:
    """Add ``vram``, ``estimate``, ``cost`` and ``plan`` to ``app``."""
    app.command("vram", help="Show whether a model fits on a device: weights, KV cache, overhead, max context and batch.")(_vram)
    app.command(
        "estimate", help="Estimate speed: time to first token, tokens/s per stream and for a saturated server."
    )(_estimate)
    app.command("cost", help="Compare owned and rented cost per 1M tokens, TCO and break-even.")(_cost)
    app.command("plan", help="Size replicas and GPUs for a user base under an SLO, or write the economics report.")(_plan)


def _vram(
    model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, quant: str | None = QuantOpt,
    kv_dtype: str = KvOpt, engine: str = EngineOpt, memory_gb: float | None = MemOpt,
    context: int = typer.Option(4096, "--context", "-c", help="tokens per sequence"),
    batch: int = typer.Option(1, "--batch", help="sequences at once"),
    tp: int | None = typer.Option(None, "--tp", help="tensor-parallel size"),
    pp: int | None = typer.Option(None, "--pp", help="pipeline-parallel size"),
    catalogue: list[Path] | None = CatOpt, as_json: bool = JsonOpt,
) -> None:
    def action() -> dict[str, Any]:
        cat, model_id = load_with_model(model, catalogue)
        fields = _deployment(model_id, gpu, gpus, quant, kv_dtype, engine, memory_gb)
        req = parse(VramIn, {**fields, "context": context, "batch": batch, "tensor_parallel": tp, "pipeline_parallel": pp})
        return service.vram(cat, req)

    _run(action, as_json, render_vram)


def _estimate(
    model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, quant: str | None = QuantOpt,
    kv_dtype: str = KvOpt, engine: str = EngineOpt, memory_gb: float | None = MemOpt,
    prompt_tokens: int = typer.Option(512, "--prompt-tokens", help="input tokens per request"),
    output_tokens: int = typer.Option(256, "--output-tokens", help="output tokens per request"),
    concurrency: int = typer.Option(1, "--concurrency", help="streams decoding at once"),
    context: int | None = ContextOpt, tp: int | None = TpOpt, pp: int | None = PpOpt,
    expert_parallel: bool = EpOpt,
    draft_tokens: int | None = typer.Option(None, "--spec-draft-tokens", help="speculative decoding: tokens drafted per step"),
    acceptance: float | None = typer.Option(None, "--spec-acceptance",
                                            help="speculative decoding: tokens emitted per step (1 .. draft tokens + 1)"),
    draft_params_b: float = typer.Option(1.0, "--spec-draft-params-b", help="parameters (billions) one draft pass reads"),
    catalogue: list[Path] | None = CatOpt, as_json: bool = JsonOpt,
) -> None:
    def action() -> dict[str, Any]:
        cat, model_id = load_with_model(model, catalogue)
        fields = _deployment(model_id, gpu, gpus, quant, kv_dtype, engine, memory_gb, expert_parallel)
        req = parse(EstimateIn, {**fields, "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
                                 "concurrency": concurrency, "context": context, "tensor_parallel": tp,
                                 "pipeline_parallel": pp, "draft_tokens": draft_tokens, "acceptance_length": acceptance,
                                 "draft_params_b": draft_params_b})
        return service.estimate(cat, req)

    _run(action, as_json, render_estimate)


def _cost(
    model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, quant: str | None = QuantOpt,
    kv_dtype: str = KvOpt, engine: str = EngineOpt, memory_gb: float | None = MemOpt,
    utilisation: float = typer.Option(0.5, "--utilisation", help="share of the month the hardware is busy (0-1]"),
    setting: str = typer.Option("datacenter", "--setting", help="home or datacenter (power price, PUE, colocation)"),
    rent_usd_per_hour: float | None = typer.Option(None, "--rent-usd-hr", help="rental price per device-hour"),
    purchase_usd: float | None = typer.Option(None, "--purchase-usd", help="purchase price of all devices"),
    power_w: float | None = typer.Option(None, "--power-w", help="power draw at load, all devices"),
    electricity: float | None = typer.Option(None, "--electricity", help="$ per kWh"),
    pue: float | None = typer.Option(None, "--pue", help="power usage effectiveness"),
    years: float | None = typer.Option(None, "--years", help="amortisation years"),
    prompt_tokens: int = typer.Option(512, "--prompt-tokens"), output_tokens: int = typer.Option(256, "--output-tokens"),
    hours_per_day: float = typer.Option(24.0, "--hours-per-day",
                                        help="hours a day the rented box runs; 24 = never stopped, so every hour is paid"),
    billing_increment_s: float | None = typer.Option(None, "--billing-increment-s",
                                                     help="rental billing increment (default: the provider's, else 3600)"),
    billing_minimum_s: float | None = typer.Option(None, "--billing-minimum-s", help="minimum billed per session"),
    reserved: bool = typer.Option(False, "--reserved", help="reserved/committed rental: every hour is paid"),
    context: int | None = ContextOpt, tp: int | None = TpOpt, pp: int | None = PpOpt,
    expert_parallel: bool = EpOpt,
    catalogue: list[Path] | None = CatOpt, as_json: bool = JsonOpt,
) -> None:
    def action() -> dict[str, Any]:
        cat, model_id = load_with_model(model, catalogue)
        fields = _deployment(model_id, gpu, gpus, quant, kv_dtype, engine, memory_gb, expert_parallel)
        req = parse(CostIn, {**fields, "utilisation": utilisation, "setting": setting,
                             "rent_usd_per_hour": rent_usd_per_hour, "purchase_usd": purchase_usd, "power_w": power_w,
                             "electricity_usd_per_kwh": electricity, "pue": pue, "amortisation_years": years,
                             "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
                             "hours_per_day": hours_per_day, "billing_increment_s": billing_increment_s,
                             "billing_minimum_s": billing_minimum_s, "reserved": reserved, "context": context,
                             "tensor_parallel": tp, "pipeline_parallel": pp})
        return service.cost(cat, req)

    _run(action, as_json, render_cost, refuse_misfit=True)


def _plan(
    model: str | None = ModelArg, gpu: str = GpuOpt, gpus: int = GpusOpt, quant: str | None = QuantOpt,
    kv_dtype: str = KvOpt, engine: str = PlanEngineOpt,
    memory_gb: float | None = MemOpt,
    users: int | None = typer.Option(None, "--users", help="user base"),
    active_fraction: float = typer.Option(0.1, "--active-fraction", help="share of users active at the peak"),
    rpm: float = typer.Option(1.0, "--requests-per-minute", help="requests per active user per minute"),
    rps: float | None = typer.Option(None, "--rps", help="peak requests/s (instead of --users)"),
    prompt_tokens: int = typer.Option(512, "--prompt-tokens"), output_tokens: int = typer.Option(256, "--output-tokens"),
    slo_ttft: float = typer.Option(2.0, "--slo-ttft", help="max time to first token, seconds"),
    slo_tps: float = typer.Option(10.0, "--slo-tps", help="min tokens/s per stream"),
    report: Path | None = ReportOpt, expert_parallel: bool = EpOpt,
    catalogue: list[Path] | None = CatOpt, as_json: bool = JsonOpt,
) -> None:
    if report is not None:
        try:
            written = write_report(report, load_catalogue(catalogue or ()))
        except InferLabError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(2) from exc
        for path in written:
            typer.echo(f"wrote {path}")
        return

    def action() -> dict[str, Any]:
        cat, model_id = load_with_model(model, catalogue)
        fields = _deployment(model_id, gpu, gpus, quant, kv_dtype, engine, memory_gb, expert_parallel)
        req = parse(CapacityIn, {**fields, "users": users, "active_fraction": active_fraction,
                                 "requests_per_active_user_per_minute": rpm, "requests_per_second": rps,
                                 "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
                                 "slo_ttft_s": slo_ttft, "slo_tokens_per_s": slo_tps})
        return service.capacity(cat, req)

    _run(action, as_json, render_plan)
