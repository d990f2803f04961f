"""Show an evaluation: progress bars while it runs, then one comparison table of every model and suite."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from inferlab.evaluation.results import EvalRun, SuiteResult
from inferlab.evaluation.runner import OnOutcome
from inferlab.evaluation.suite import Outcome

__all__ = ["comparison_table", "notes", "progress_bars"]

_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("model", "left"), ("suite", "left"), ("score [95% CI]", "right"), ("pass@k", "right"), ("problems", "right"),
    ("errors", "right"), ("tokens in / out", "right"), ("wall s", "right"), ("tok/s", "right"),
    ("$ / 1k problems", "right"), ("scored by", "left"),
)


@contextmanager
def progress_bars(console: Console, totals: Mapping[tuple[str, str], int], *, enabled: bool) -> Iterator[OnOutcome]:
    """Yield an ``on_outcome`` callback that advances one bar per (model, suite) with its running score."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("score {task.fields[score]}"), TimeElapsedColumn(),
        console=console, disable=not enabled, transient=True,
    )
    tasks: dict[tuple[str, str], TaskID] = {}
    sums: dict[tuple[str, str], float] = {}
    for (model, suite), total in totals.items():
        tasks[(model, suite)] = progress.add_task(escape(f"{model} · {suite}"), total=total, score="-")

    def advance(model: str, suite: str, outcome: Outcome, cached: bool) -> None:
        key = (model, suite)
        sums[key] = sums.get(key, 0.0) + outcome.score
        done = progress.tasks[tasks[key]].completed + 1
        progress.update(tasks[key], advance=1, score=f"{sums[key] / done:.3f}")

    with progress:
        yield advance


def _score(result: SuiteResult) -> str:
    score = result.score
    return f"{score.value:.3f} [{score.low:.3f}, {score.high:.3f}]"


def _pass_at(result: SuiteResult) -> str:
    return ", ".join(f"@{k} {value:.3f}" for k, value in result.pass_at.items() if k != 1) or "-"


def _cost(result: SuiteResult) -> str:
    return "-" if result.cost_per_1k_problems is None else f"${result.cost_per_1k_problems:.4f}"


def _scoring(result: SuiteResult) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(result.scoring.items())) or "execution"


def comparison_table(run: EvalRun) -> Table:
    """Every (model, suite) as a row: the score with its 95 % interval, what it cost in tokens and time."""
    table = Table(title=f"Evaluation — {escape(run.base_url)}", title_justify="left")
    for name, justify in _COLUMNS:
        table.add_column(name, justify=justify)
    for result in run.results:
        problems = f"{result.problems}" + (f" ({result.cached} cached)" if result.cached else "")
        table.add_row(
            escape(result.model), escape(result.suite), _score(result), _pass_at(result), problems, str(result.errors),
            f"{result.prompt_tokens:,} / {result.completion_tokens:,}", f"{result.wall_seconds:.1f}",
            f"{result.tokens_per_s:.1f}", _cost(result), _scoring(result),
        )
    return table


_READING = ("score: pass@1 for code suites, accuracy for multiple choice; interval: Wilson for 0/1 scores, "
            "bootstrap over problems otherwise; tok/s: completion tokens per second of request time")


def notes(run: EvalRun) -> list[str]:
    """What a reader must know to read the table: the sandbox, the intervals, the cost assumptions."""
    lines = [f"sandbox: {run.isolation}", _READING]
    for result in run.results:
        if result.cost_note:
            lines.append(f"cost {result.model} · {result.suite}: {result.cost_note}")
    return lines
