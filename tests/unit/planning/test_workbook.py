"""The financial model as a workbook: it opens, its formulas compute what the Python model does, and
changing an input changes the outputs.

The formulas are evaluated by the ``formulas`` engine (a pure-Python Excel calculator). Evaluating
the shipped 36-month workbook takes ~50 s on this machine, so the formula check runs the shipped
paths over a 12-month horizon: every month row has the same formulas, so the shorter sheet checks
all of them; the committed 36-month workbook is checked for freshness and structure with openpyxl.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from inferlab.planning import load_catalogue
from inferlab.planning.capstone_report import workbook_paths
from inferlab.planning.finance import PathResult, run_path
from inferlab.planning.workbook import (
    FIRST_INPUT_ROW,
    INPUT_NAMES,
    INPUTS_SHEET,
    SUMMARY_SHEET,
    WorkbookPath,
    pnl_sheet,
    summary_cells,
    write_workbook,
)

openpyxl = pytest.importorskip("openpyxl")
formulas = pytest.importorskip("formulas")

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "economics.xlsx"
METRICS = ("break_even_month", "cumulative_cash", "operating_margin", "cost_per_request", "upfront_usd")


def _python(result: PathResult, metric: str) -> float | str:
    if metric == "break_even_month":
        return result.break_even_month or "never"
    if metric == "upfront_usd":
        return result.upfront_usd
    return float(getattr(result.final, metric))


def _cell(solution: Any, book: str, sheet: str, cell: str) -> Any:
    value = solution[f"'[{book}]{sheet.upper()}'!{cell}"].value[0, 0]
    return value.item() if hasattr(value, "item") else value


@pytest.fixture(scope="module")
def short_book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[WorkbookPath], Any, Any]:
    paths = [replace(p, inputs=replace(p.inputs, months=12)) for p in workbook_paths(load_catalogue())]
    target = tmp_path_factory.mktemp("wb") / "model.xlsx"
    write_workbook(target, paths)
    model = formulas.ExcelModel().loads(str(target)).finish()
    return target, paths, model, model.calculate()


def test_the_workbook_opens_and_holds_live_formulas(short_book: tuple[Path, list[WorkbookPath], Any, Any]) -> None:
    target, paths, _, _ = short_book
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames[:1] == [INPUTS_SHEET] and SUMMARY_SHEET in wb.sheetnames
    pnl = wb[pnl_sheet("buy")]
    assert str(pnl["Q5"].value) == "=Q4+P5"  # cumulative cash is a formula, not a number
    assert str(pnl["F4"].value).startswith("=ROUNDUP(")
    assert wb[SUMMARY_SHEET][summary_cells(paths)["buy"]["break_even_month"]].value.startswith("=IF(MIN(")


def test_formulas_compute_what_the_python_model_does(short_book: tuple[Path, list[WorkbookPath], Any, Any]) -> None:
    target, paths, _, solution = short_book
    cells = summary_cells(paths)
    for p in paths:
        result = run_path(p.inputs)
        for metric in METRICS:
            expected = _python(result, metric)
            got = _cell(solution, target.name, SUMMARY_SHEET, cells[p.key][metric])
            if isinstance(expected, str):
                assert got == expected, (p.key, metric)
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), (p.key, metric)
        for month in result.months:  # every month of every P&L line, not only the summary
            row = 3 + month.month
            assert _cell(solution, target.name, pnl_sheet(p.key), f"N{row}") == pytest.approx(month.total_cost, rel=1e-9)
            assert _cell(solution, target.name, pnl_sheet(p.key), f"Q{row}") == pytest.approx(month.cumulative_cash,
                                                                                               rel=1e-9, abs=1e-6)


def test_changing_an_input_changes_the_outputs(short_book: tuple[Path, list[WorkbookPath], Any, Any]) -> None:
    target, paths, model, solution = short_book
    column = "C"  # the second path: buy
    row = FIRST_INPUT_ROW + INPUT_NAMES.index("price_per_user_month")
    cell = f"'[{target.name}]{INPUTS_SHEET.upper()}'!{column}{row}"
    changed = model.calculate(inputs={cell: 70.0})
    summary = summary_cells(paths)["buy"]["cumulative_cash"]
    before = _cell(solution, target.name, SUMMARY_SHEET, summary)
    after = _cell(changed, target.name, SUMMARY_SHEET, summary)
    assert after > before
    expected = run_path(replace(paths[1].inputs, price_per_user_month=70.0)).final.cumulative_cash
    assert after == pytest.approx(expected, rel=1e-9)


def test_the_committed_workbook_is_current() -> None:
    wb = openpyxl.load_workbook(COMMITTED)
    inputs = wb[INPUTS_SHEET]
    for i, p in enumerate(workbook_paths(load_catalogue())):
        column = chr(ord("B") + i)
        for j, name in enumerate(INPUT_NAMES):
            assert inputs[f"{column}{FIRST_INPUT_ROW + j}"].value == pytest.approx(getattr(p.inputs, name)), (
                f"docs/economics.xlsx is stale ({p.key}.{name}): run `python -m inferlab.planning.report docs/economics.md`"
            )
        assert wb[pnl_sheet(p.key)].max_row == 3 + p.inputs.months
    assert {"Sensitivity", "Seed vs InferLab"} <= set(wb.sheetnames)
