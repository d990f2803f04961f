"""The financial model as a spreadsheet with live formulas (``.xlsx``, via openpyxl).

Sheets: ``Inputs`` (one column per path: every assumption, with where it comes from), one
``P&L <path>`` sheet per path (a row per month, every cell a formula over the inputs: the same
arithmetic as :func:`inferlab.planning.finance.run_path`), ``Summary`` (break-even month, cash,
margin and cost per request, as formulas over the P&L sheets) and two sheets of values InferLab
computed (``Sensitivity`` and ``Seed vs InferLab``). Change an input and the P&L and break-even
follow. openpyxl is imported only here, when a workbook is written (``pip install inferlab[planning]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path as FilePath
from typing import Any

from inferlab.errors import InvalidRequest
from inferlab.planning.finance import HOURS_PER_MONTH, PathInputs
from inferlab.planning.seed import Comparison
from inferlab.planning.sensitivity import Tornado

INPUTS_SHEET = "Inputs"
SUMMARY_SHEET = "Summary"
FIRST_INPUT_ROW = 4
FIRST_MONTH_ROW = 4

#: What each input is and where its value comes from (the Inputs sheet's last columns).
INPUT_NOTES: dict[str, tuple[str, str]] = {
    "start_users": ("users", "the seed: 1,000 users (mini lab: 10)"),
    "target_users": ("users", "the seed: 5,000 users (mini lab: 20)"),
    "ramp_months": ("months", "assumption (E): linear growth to the target"),
    "price_per_user_month": ("$/user-month", "the seed: $50"),
    "requests_per_user_month": ("requests", "assumption (E): coding assistant, ~70 a working day"),
    "peak_to_average": ("x", "assumption (E): working hours carry the load"),
    "browser_share": ("share", "0 = server only; the seed's hybrid: 0.8"),
    "replica_requests_per_s": ("requests/s", "InferLab capacity model: one replica at the SLO"),
    "target_utilisation": ("share", "replicas sized to run at this share of capacity at the peak"),
    "gpus_per_replica": ("GPUs", "the path's replica"),
    "owned_replicas": ("replicas", "bought in month 1 (buy: enough for the target; burst: the average load)"),
    "capex_per_replica": ("$", "catalogue: 8x H100 server price (share for 4 GPUs); mini lab: 2 x $1,599 + host"),
    "amortisation_months": ("months", "catalogue: 4 years data centre, 3 years consumer"),
    "power_kw_per_replica": ("kW", "catalogue: 10.2 kW per 8x H100 server; mini lab 1.05 kW (E)"),
    "idle_power_fraction": ("share", "assumption (E): an idle server still draws ~30 %"),
    "pue": ("x", "catalogue: Uptime Institute 2024 average 1.56 (home: 1.0)"),
    "electricity_usd_per_kwh": ("$/kWh", "catalogue: data centre 0.10, home 0.165"),
    "colo_usd_per_kw_month": ("$/kW-month", "catalogue: colocation quotes (home: 0)"),
    "rent_usd_per_gpu_hour": ("$/GPU-hour", "catalogue: cheapest on-demand/secure offer"),
    "rented_hours_per_month": ("hours", "730 = reserved all month; burst: peak hours only"),
    "cdn_usd_per_user_month": ("$/user-month", "assumption (E): browser model downloads, 2 x 1 GB at $0.02/GB"),
    "other_usd_per_month": ("$/month", "staff, tools, support: not in the seed's model (0)"),
}

INPUT_NAMES = tuple(f.name for f in fields(PathInputs) if f.name != "months")

#: P&L columns: (header, formula template). ``{r}`` is the row, ``{p}`` the previous row, ``{in[name]}``
#: an absolute reference to the path's input.
PNL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("month", ""),
    ("users", "={in[start_users]}+({in[target_users]}-{in[start_users]})*MIN(1,(A{r}-1)/{in[ramp_months]})"),
    ("revenue", "=B{r}*{in[price_per_user_month]}"),
    ("server requests", "=B{r}*{in[requests_per_user_month]}*(1-{in[browser_share]})"),
    ("peak requests/s", "=D{r}*{in[peak_to_average]}/" + f"{HOURS_PER_MONTH * 3600:.0f}"),
    ("replicas needed", "=ROUNDUP(ROUND(E{r}/({in[replica_requests_per_s]}*{in[target_utilisation]}),9),0)"),
    ("rented replicas", "=MAX(0,F{r}-{in[owned_replicas]})"),
    ("depreciation", ("=IF(A{r}<={in[amortisation_months]},{in[owned_replicas]}*{in[capex_per_replica]}"
                      "/{in[amortisation_months]},0)")),
    ("energy", ("={in[owned_replicas]}*{in[power_kw_per_replica]}*{in[pue]}*" + f"{HOURS_PER_MONTH:.0f}"
                + "*{in[electricity_usd_per_kwh]}*({in[idle_power_fraction]}+(1-{in[idle_power_fraction]})"
                "*IF({in[owned_replicas]}*{in[replica_requests_per_s]}>0,MIN(1,E{r}/{in[peak_to_average]}"
                "/({in[owned_replicas]}*{in[replica_requests_per_s]})),0))")),
    ("colocation", "={in[owned_replicas]}*{in[power_kw_per_replica]}*{in[colo_usd_per_kw_month]}"),
    ("rent", "=G{r}*{in[gpus_per_replica]}*{in[rent_usd_per_gpu_hour]}*{in[rented_hours_per_month]}"),
    ("CDN", "=IF({in[browser_share]}>0,B{r}*{in[cdn_usd_per_user_month]},0)"),
    ("other", "={in[other_usd_per_month]}"),
    ("total cost", "=H{r}+I{r}+J{r}+K{r}+L{r}+M{r}"),
    ("operating margin", "=C{r}-N{r}"),
    ("cash flow", "=C{r}-(I{r}+J{r}+K{r}+L{r}+M{r})-IF(A{r}=1,{in[owned_replicas]}*{in[capex_per_replica]},0)"),
    ("cumulative cash", "=Q{p}+P{r}"),
    ("cost per request", "=IF(B{r}*{in[requests_per_user_month]}>0,N{r}/(B{r}*{in[requests_per_user_month]}),0)"),
    ("cost per server request", "=IF(D{r}>0,N{r}/D{r},0)"),
    ("break-even flag", "=IF(Q{r}>=0,A{r},9999)"),
)
NEVER = 9999


@dataclass(frozen=True)
class WorkbookPath:
    key: str
    title: str
    inputs: PathInputs


def _column(i: int) -> str:
    return chr(ord("A") + i)


def pnl_sheet(key: str) -> str:
    return f"P&L {key}"


def input_refs(path_index: int) -> dict[str, str]:
    col = _column(1 + path_index)
    return {name: f"{INPUTS_SHEET}!${col}${FIRST_INPUT_ROW + i}" for i, name in enumerate(INPUT_NAMES)}


def summary_cells(paths: Sequence[WorkbookPath]) -> dict[str, dict[str, str]]:
    """Where the Summary sheet holds each path's results: {key: {metric: cell}}."""
    metrics = ("break_even_month", "cumulative_cash", "operating_margin", "cost_per_request", "upfront_usd")
    return {p.key: {m: f"{_column(1 + i)}{4 + j}" for j, m in enumerate(metrics)} for i, p in enumerate(paths)}


def _load_openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError as exc:  # an optional dependency
        raise InvalidRequest("writing the workbook needs openpyxl: pip install 'inferlab[planning]'",
                             param="report") from exc
    return openpyxl


def write_workbook(target: FilePath, paths: Sequence[WorkbookPath], tornados: Sequence[Tornado] = (),
                   seed: Sequence[Comparison] = ()) -> None:
    openpyxl = _load_openpyxl()
    from openpyxl.styles import Font

    bold = Font(bold=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = INPUTS_SHEET
    ws["A1"] = "Inputs: change a value here and the P&L and Summary sheets follow"
    ws["A1"].font = bold
    ws.append([])
    ws.append(["input", *(p.title for p in paths), "unit", "where the value comes from"])
    for name in INPUT_NAMES:
        unit, note = INPUT_NOTES[name]
        ws.append([name, *(float(getattr(p.inputs, name)) for p in paths), unit, note])
    for i, p in enumerate(paths):
        _pnl(wb.create_sheet(pnl_sheet(p.key)), p, input_refs(i), bold)
    _summary(wb.create_sheet(SUMMARY_SHEET), paths, bold)
    if tornados:
        _values_sheet(wb.create_sheet("Sensitivity"), "Sensitivity (computed by InferLab: cumulative cash, $)",
                      ["path", "input", "low", "outcome at low", "high", "outcome at high", "base"],
                      [[t.path, b.lever, b.low_label, b.low, b.high_label, b.high, t.base] for t in tornados
                       for b in t.bars], bold)
    if seed:
        _values_sheet(wb.create_sheet("Seed vs InferLab"), "The seed's figures against InferLab's",
                      ["figure", "the seed", "InferLab", "verdict", "why"],
                      [[c.figure, c.seed, c.inferlab, c.verdict, c.why] for c in seed], bold)
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)


def _pnl(ws: Any, path: WorkbookPath, refs: dict[str, str], bold: Any) -> None:
    from openpyxl.styles import Font

    ws["A1"] = f"Monthly P&L: {path.title} (every cell is a formula over the Inputs sheet)"
    ws["A1"].font = Font(bold=True)
    ws.append([])
    ws.append([header for header, _ in PNL_COLUMNS])
    for cell in ws[3]:
        cell.font = bold
    for m in range(1, path.inputs.months + 1):
        r = FIRST_MONTH_ROW + m - 1
        row: list[Any] = [m]
        for header, template in PNL_COLUMNS[1:]:
            if header == "cumulative cash" and m == 1:
                row.append(f"=P{r}")
            else:
                row.append(template.format(r=r, p=r - 1, **{"in": refs}))
        ws.append(row)


def _summary(ws: Any, paths: Sequence[WorkbookPath], bold: Any) -> None:
    ws["A1"] = "Summary and break-even (formulas over the P&L sheets)"
    ws["A1"].font = bold
    ws.append([])
    ws.append(["", *(p.title for p in paths)])
    cells = summary_cells(paths)
    labels = {"break_even_month": "break-even month (cumulative cash >= 0)",
              "cumulative_cash": "cumulative cash at the horizon ($)", "operating_margin": "operating margin, last month ($)",
              "cost_per_request": "cost per request, last month ($)", "upfront_usd": "purchases in month 1 ($)"}
    for metric, label in labels.items():
        ws[f"A{cells[paths[0].key][metric][1:]}"] = label
    for i, p in enumerate(paths):
        sheet = f"'{pnl_sheet(p.key)}'"
        first, last = FIRST_MONTH_ROW, FIRST_MONTH_ROW + p.inputs.months - 1
        refs = input_refs(i)
        c = cells[p.key]
        ws[c["break_even_month"]] = (f"=IF(MIN({sheet}!T{first}:T{last})={NEVER},\"never\","
                                     f"MIN({sheet}!T{first}:T{last}))")
        ws[c["cumulative_cash"]] = f"={sheet}!Q{last}"
        ws[c["operating_margin"]] = f"={sheet}!O{last}"
        ws[c["cost_per_request"]] = f"={sheet}!R{last}"
        ws[c["upfront_usd"]] = f"={refs['owned_replicas']}*{refs['capex_per_replica']}"


def _values_sheet(ws: Any, title: str, header: list[str], rows: list[list[Any]], bold: Any) -> None:
    ws["A1"] = title
    ws["A1"].font = bold
    ws.append([])
    ws.append(header)
    for row in rows:
        ws.append(row)
