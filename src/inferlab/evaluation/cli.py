"""The ``inferlab eval`` command; ``register(app)`` adds it to a Typer application."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from inferlab.evaluation.cache import OutcomeCache
from inferlab.evaluation.client import ModelClient
from inferlab.evaluation.errors import EvaluationError
from inferlab.evaluation.humaneval import HumanEval, Prompting, humaneval_problems
from inferlab.evaluation.infilling import Infilling, InfillMode, infilling_problems
from inferlab.evaluation.multiple_choice import MultipleChoice, builtin_questions, load_questions
from inferlab.evaluation.pricing import Deployment, parse_deployment, price_result
from inferlab.evaluation.report import comparison_table, notes, progress_bars
from inferlab.evaluation.results import EvalRun, SuiteResult
from inferlab.evaluation.runner import evaluate, problem_counts
from inferlab.evaluation.sandbox import IsolationMode, Sandbox, SandboxLimits, SandboxUnavailable
from inferlab.evaluation.suite import Suite

__all__ = ["EVAL_HELP", "register"]

EVAL_HELP = ("Evaluate models on an OpenAI-compatible server (InferLab or any other): HumanEval pass@k, "
             "HumanEval infilling and multiple choice, with confidence intervals, tokens, time and cost.")
SUITES = ("humaneval", "infilling", "mc")


def _split(text: str, what: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise typer.BadParameter(f"give at least one {what}")
    return items


def _ks(text: str) -> list[int]:
    try:
        return [int(part) for part in _split(text, "k")]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _deployments(specs: list[str], models: list[str]) -> dict[str, Deployment]:
    chosen: dict[str, Deployment] = {}
    for spec in specs:
        name, _, rest = spec.partition("=") if "=" in spec else ("", "", spec)
        if name and name not in models:
            raise EvaluationError(f"--deployment {spec!r} names {name!r}, which is not in --models")
        for model in [name] if name else models:
            chosen[model] = parse_deployment(rest)
    return chosen


def _suites(names: list[str], sandbox: Sandbox, options: dict[str, Any]) -> list[Suite]:
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise EvaluationError(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)}")
    limit, seed, samples, ks = options["limit"], options["seed"], options["samples"], options["ks"]
    temperature = options["temperature"]
    suites: list[Suite] = []
    code = humaneval_problems()[:limit] if {"humaneval", "infilling"} & set(names) else []
    if "humaneval" in names:
        suites.append(HumanEval(code, sandbox, prompting=options["prompting"], samples=samples, ks=ks,
                                temperature=temperature, max_tokens=options["max_tokens"], seed=seed))
    if "infilling" in names:
        tasks = infilling_problems(code, options["infill_modes"], seed=seed)
        suites.append(Infilling(tasks, sandbox, samples=samples, ks=ks, temperature=temperature,
                                max_tokens=options["infill_max_tokens"], seed=seed))
    if "mc" in names:
        path: Path | None = options["mc_file"]
        questions = load_questions(path) if path else builtin_questions()
        suites.append(MultipleChoice(questions[:limit], name=f"mc:{path.stem}" if path else "mc:builtin",
                                     prompting=options["mc_prompting"], scoring=options["mc_scoring"], seed=seed))
    return suites


async def _run(base_url: str, api_key: str | None, request_timeout: float, models: list[str], names: list[str],
               sandbox: Sandbox, options: dict[str, Any], console: Console, show_progress: bool) -> EvalRun:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    isolation = await sandbox.start() if {"humaneval", "infilling"} & set(names) else None
    if isolation is not None:
        style = "green" if isolation.mode == "full" else "yellow"
        console.print(f"[{style}]sandbox:[/{style}] {escape(isolation.notice)}", highlight=False)
    suites = _suites(names, sandbox, options)
    cache = None if options["no_cache"] else OutcomeCache(options["cache_dir"])
    async with ModelClient(base_url, api_key=api_key, timeout=request_timeout) as client:
        with progress_bars(console, problem_counts(suites, models), enabled=show_progress) as on_outcome:
            results = await evaluate(client, models, suites, concurrency=options["concurrency"], cache=cache,
                                     resume=options["resume"], on_outcome=on_outcome, seed=options["seed"])
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in options.items()}
    return EvalRun(base_url=client.base_url, started_at=started, settings={**settings, "models": models, "suites": names},
                   isolation=isolation.notice if isolation else "no code was executed", results=tuple(results))


def _priced(results: tuple[SuiteResult, ...], deployments: dict[str, Deployment], rent: float | None) -> tuple[SuiteResult, ...]:
    if not deployments:
        return results
    from inferlab.planning.catalogue import load_catalogue

    catalogue = load_catalogue()
    return tuple(price_result(r, deployments[r.model], catalogue, rent_usd_per_hour=rent) if r.model in deployments else r
                 for r in results)


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
    concurrency: Annotated[int, typer.Option(help="Problems in flight at once.")] = 1,
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
    errors = Console(stderr=True)
    for value, hint in ((prompting, "--prompting"), (mc_prompting, "--mc-prompting")):
        if value not in ("completion", "chat"):
            raise typer.BadParameter("must be 'completion' or 'chat'", param_hint=hint)
    if mc_scoring not in ("auto", "generation"):
        raise typer.BadParameter("must be 'auto' or 'generation'", param_hint="--mc-scoring")
    if sandbox_mode not in ("auto", "full", "limits"):
        raise typer.BadParameter("must be 'auto', 'full' or 'limits'", param_hint="--sandbox")
    modes = _split(infill_modes, "infilling mode")
    if any(mode not in ("single", "multi") for mode in modes):
        raise typer.BadParameter("must be single, multi or both", param_hint="--infill-modes")
    if limit is not None and limit < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--limit")
    chosen_prompting: Prompting = "chat" if prompting == "chat" else "completion"
    infill: list[InfillMode] = ["single" if mode == "single" else "multi" for mode in modes]
    isolation: IsolationMode = "full" if sandbox_mode == "full" else "limits" if sandbox_mode == "limits" else "auto"
    model_names = _split(models, "model")
    options: dict[str, Any] = {
        "prompting": chosen_prompting, "mc_prompting": "chat" if mc_prompting == "chat" else "completion",
        "limit": limit, "samples": samples, "ks": _ks(k),
        "temperature": temperature if temperature is not None else (0.0 if samples == 1 else 0.8),
        "max_tokens": max_tokens, "infill_max_tokens": infill_max_tokens, "infill_modes": infill,
        "mc_file": mc_file, "mc_scoring": mc_scoring, "concurrency": concurrency, "seed": seed,
        "cache_dir": cache_dir.expanduser(), "no_cache": no_cache, "resume": resume,
        "program_timeout": program_timeout, "program_memory_mb": program_memory_mb,
    }
    try:
        prices = _deployments(deployment or [], model_names)
        sandbox = Sandbox(SandboxLimits(wall_seconds=program_timeout, memory_mb=program_memory_mb),
                          concurrency=sandbox_concurrency, isolation=isolation)
        run = asyncio.run(_run(base_url, api_key, request_timeout, model_names, _split(suites, "suite"), sandbox,
                               options, console, not quiet and console.is_terminal))
        run = EvalRun(run.base_url, run.started_at, run.settings, run.isolation,
                      _priced(run.results, prices, rent_usd_per_hour))
    except (EvaluationError, SandboxUnavailable, ValueError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        errors.print("interrupted: finished problems are in the cache; run the same command again to resume")
        raise typer.Exit(130) from None
    console.print(comparison_table(run))
    for line in notes(run):
        console.print(f"[dim]{escape(line)}[/dim]", highlight=False)
    if json_path is not None:
        run.save(json_path)
        console.print(f"result written to {escape(str(json_path))}", highlight=False)
    failed = [r for r in run.results if r.problems and r.errors >= r.requests]
    if failed:
        reason = f"every request failed for {failed[0].model} · {failed[0].suite}: {_first_error(failed[0])}"
        errors.print(f"[red]error:[/red] {escape(reason)}", highlight=False)
        raise typer.Exit(1)


def _first_error(result: SuiteResult) -> str:
    for outcome in result.outcomes:
        for key in ("error", "failures"):
            value = outcome.detail.get(key)
            if value:
                return str(value[0] if isinstance(value, list) else value)
    return "unknown"


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to ``app``."""
    app.command("eval", help=EVAL_HELP)(eval_command)
