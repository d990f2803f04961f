"""The ``inferlab eval`` command; ``register(app)`` adds it to a Typer application."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from inferlab.evaluation.cache import OutcomeCache
from inferlab.evaluation.client import ModelClient
from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.plan import EvalPlan, build_suites
from inferlab.evaluation.pricing import Deployment, parse_deployment, price_result
from inferlab.evaluation.report import comparison_table, notes, progress_bars
from inferlab.evaluation.results import EvalRun, SuiteResult
from inferlab.evaluation.runner import evaluate, problem_counts
from inferlab.evaluation.sandbox import Sandbox, SandboxLimits, SandboxUnavailable

__all__ = ["EVAL_HELP", "register"]

EVAL_HELP = ("Evaluate models on an OpenAI-compatible server (InferLab or any other): HumanEval pass@k, "
             "HumanEval infilling and multiple choice, with confidence intervals, tokens, time and cost.")
Choice = TypeVar("Choice", bound=str)


def _split(text: str, what: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise typer.BadParameter(f"give at least one {what}")
    return items


def _ks(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _split(text, "k"))
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _choice(value: str, allowed: tuple[Choice, ...], hint: str) -> Choice:
    for option in allowed:
        if value == option:
            return option
    raise typer.BadParameter(f"must be one of {', '.join(allowed)}", param_hint=hint)


def _deployments(specs: list[str], models: tuple[str, ...]) -> dict[str, Deployment]:
    chosen: dict[str, Deployment] = {}
    for spec in specs:
        name, _, rest = spec.partition("=") if "=" in spec else ("", "", spec)
        if name and name not in models:
            raise EvaluationError(f"--deployment {spec!r} names {name!r}, which is not in --models")
        for model in [name] if name else models:
            chosen[model] = parse_deployment(rest)
    return chosen


async def _run(plan: EvalPlan, client: ModelClient, sandbox: Sandbox, console: Console, show_progress: bool) -> EvalRun:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    isolation = await sandbox.start() if plan.runs_code else None
    if isolation is not None:
        style = "green" if isolation.mode == "full" else "yellow"
        console.print(f"[{style}]sandbox:[/{style}] {escape(isolation.notice)}", highlight=False)
    suites = build_suites(plan, sandbox)
    cache = OutcomeCache(plan.cache_dir) if plan.cache_dir is not None else None
    async with client:
        with progress_bars(console, problem_counts(suites, plan.models), enabled=show_progress) as on_outcome:
            results = await evaluate(client, plan.models, suites, concurrency=plan.concurrency, cache=cache,
                                     resume=plan.resume, on_outcome=on_outcome, seed=plan.seed)
    return EvalRun(base_url=client.base_url, started_at=started, settings=plan.settings(),
                   isolation=isolation.notice if isolation else "no code was executed", results=tuple(results))


def _priced(run: EvalRun, deployments: dict[str, Deployment], rent: float | None) -> EvalRun:
    if not deployments:
        return run
    from inferlab.planning.catalogue import load_catalogue

    catalogue = load_catalogue()
    results = tuple(price_result(r, deployments[r.model], catalogue, rent_usd_per_hour=rent)
                    if r.model in deployments else r for r in run.results)
    return EvalRun(run.base_url, run.started_at, run.settings, run.isolation, results)


def _show(run: EvalRun, console: Console, json_path: Path | None) -> None:
    console.print(comparison_table(run))
    for line in notes(run):
        console.print(f"[dim]{escape(line)}[/dim]", highlight=False)
    if json_path is not None:
        run.save(json_path)
        console.print(f"result written to {escape(str(json_path))}", highlight=False)


def _first_error(result: SuiteResult) -> str:
    for outcome in result.outcomes:
        for key in ("error", "failures"):
            value = outcome.detail.get(key)
            if value:
                return str(value[0] if isinstance(value, list) else value)
    return "unknown"


def eval_command(
    base_url: Annotated[str, typer.Option(help="Server base URL, e.g. http://127.0.0.1:8000/v1.")],
    models: Annotated[str,
        typer.Option(help="Comma-separated model names; each is evaluated on every suite.")],
    suites: Annotated[str,
        typer.Option(help="Comma-separated: humaneval, infilling, mc.")] = "humaneval,infilling,mc",
    api_key: Annotated[str | None, typer.Option(help="Sent as 'Authorization: Bearer ...'.")] = None,
    prompting: Annotated[str,
        typer.Option(help="HumanEval prompting: completion (the raw prompt, as in the paper) or chat.")] = "completion",
    limit: Annotated[int | None,
        typer.Option(help="Only the first N problems of each suite (infilling: of N HumanEval problems).")] = None,
    samples: Annotated[int, typer.Option(help="Samples per code problem (pass@k needs k <= samples).")] = 1,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k of pass@k.")] = "1",
    temperature: Annotated[float | None,
        typer.Option(help="Sampling temperature (default 0 with 1 sample, else 0.8).")] = None,
    max_tokens: Annotated[int, typer.Option(help="max_tokens of a HumanEval answer.")] = 384,
    infill_max_tokens: Annotated[int, typer.Option(help="max_tokens of an infilling answer.")] = 96,
    infill_modes: Annotated[str,
        typer.Option(help="Comma-separated infilling tasks: single, multi.")] = "single,multi",
    mc_file: Annotated[Path | None,
        typer.Option(help="JSONL questions {question, choices, answer} (default: built-in set).")] = None,
    mc_prompting: Annotated[str,
        typer.Option(help="Multiple-choice prompting: chat (for instruction-tuned models) or completion.")] = "chat",
    mc_scoring: Annotated[str,
        typer.Option(help="auto (log-likelihood when the server returns logprobs) or generation.")] = "auto",
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once (match the server's slots).")] = 1,
    sandbox_mode: Annotated[str,
        typer.Option("--sandbox", help="auto, full (refuse to run without isolation) or limits.")] = "auto",
    sandbox_concurrency: Annotated[int, typer.Option(help="Programs executed at once.")] = 2,
    program_timeout: Annotated[float,
        typer.Option(help="Wall-clock seconds a generated program may run.")] = 10.0,
    program_memory_mb: Annotated[int,
        typer.Option(help="Address-space limit of a generated program (MiB).")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of sampling, infilling spans and intervals.")] = 0,
    cache_dir: Annotated[Path,
        typer.Option(help="Where finished problems are kept for resuming.")] = Path("~/.cache/inferlab/eval"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    resume: Annotated[bool,
        typer.Option("--resume/--fresh", help="Reuse finished problems from the cache.")] = True,
    deployment: Annotated[list[str] | None,
        typer.Option(help="Price 1,000 problems on MODEL=CATALOGUE_MODEL@ACCELERATOR:N/QUANT "
                     "(MODEL=, :N and /QUANT optional; repeatable), e.g. smollm2-135m@l4/Q4_1.")] = None,
    rent_usd_per_hour: Annotated[float | None,
        typer.Option(help="Hourly price per device for --deployment (CPU entries have none).")] = None,
    request_timeout: Annotated[float,
        typer.Option("--timeout", help="Per-request timeout in seconds.")] = 300.0,
    json_path: Annotated[Path | None,
        typer.Option("--json", help="Write the full result (every problem) here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    console = Console()
    if not console.is_terminal:  # piped or in a file: the whole table, not 80 columns of ellipses
        console = Console(width=220)
    errors = Console(stderr=True)
    prompts: tuple[Literal["completion", "chat"], ...] = ("completion", "chat")
    try:
        plan = EvalPlan(
            models=_split(models, "model"), suites=_split(suites, "suite"),
            prompting=_choice(prompting, prompts, "--prompting"),
            mc_prompting=_choice(mc_prompting, prompts, "--mc-prompting"), limit=limit, samples=samples, ks=_ks(k),
            temperature=temperature if temperature is not None else (0.0 if samples == 1 else 0.8),
            max_tokens=max_tokens, infill_max_tokens=infill_max_tokens,
            infill_modes=tuple(_choice(mode, ("single", "multi"), "--infill-modes")
                               for mode in _split(infill_modes, "infilling mode")),
            mc_file=mc_file, mc_scoring=_choice(mc_scoring, ("auto", "generation"), "--mc-scoring"),
            concurrency=concurrency, seed=seed, cache_dir=None if no_cache else cache_dir.expanduser(), resume=resume,
        )
        prices = _deployments(deployment or [], plan.models)
        limits = SandboxLimits(wall_seconds=program_timeout, memory_mb=program_memory_mb)
        sandbox = Sandbox(limits, concurrency=sandbox_concurrency,
                          isolation=_choice(sandbox_mode, ("auto", "full", "limits"), "--sandbox"))
        client = ModelClient(base_url, api_key=api_key, timeout=request_timeout)
        run = asyncio.run(_run(plan, client, sandbox, console, not quiet and console.is_terminal))
        run = _priced(run, prices, rent_usd_per_hour)
    except (EvaluationError, SandboxUnavailable, ValueError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        errors.print("interrupted: finished problems are in the cache; run the same command again to resume")
        raise typer.Exit(130) from None
    _show(run, console, json_path)
    failed = [r for r in run.results if r.problems and r.errors >= r.requests]
    if failed:
        reason = f"every request failed for {failed[0].model} · {failed[0].suite}: {_first_error(failed[0])}"
        errors.print(f"[red]error:[/red] {escape(reason)}", highlight=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to ``app``."""
    app.command("eval", help=EVAL_HELP)(eval_command)
