"""CodeLab's complexity router: build the labelled set, calibrate the thresholds, report.

The labelled set is made from real code not written for it — the Python sources of packages
installed in this environment (click, jwt, attr, typer, yaml, yarl, multidict) — as the requests
an editor would send: single-line and multi-line completions at real cursor positions, docs for
real functions and classes, reviews of diffs that change real functions. Each row is labelled with
the smallest tier that should serve it, by the written rubric below, applied to what the router
cannot see (the true answer: the length of the missing code, whether it needs a definition from
another file, how much a diff changes and across how many files):

    completion  small:  single line, at most 25 characters missing, no other file's definition needed
                medium: single line needing another file's definition or longer; multi-line up to 8 lines
                large:  multi-line over 8 lines
    docs        small:  up to 3 lines of code; medium: a function up to 30 lines; large: classes, longer code
    review      small:  up to 2 changed lines in one file; medium: up to 20 in one file; large: more, or several files

Writes ``src/inferlab/code/data/routing_set.jsonl``, ``routing_thresholds.json`` (the shipped
calibration: weights fitted by coordinate search, then the thresholds) and ``routing_report.json``,
and prints the report (accuracy, sufficiency and cost per 1,000 requests against always-large,
priced by the planning toolkit for the tier deployments below).

    python bench/codelab_routing.py [--write]
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.code.calibration import LabelledTask, decisions, fit, load_set, report, save_set
from inferlab.code.chunking import Chunk, Chunker
from inferlab.code.routing import DEFAULT_THRESHOLDS, CodeTask
from inferlab.planning import service
from inferlab.planning.catalogue import load_catalogue
from inferlab.planning.schemas import CostIn

DATA = ROOT / "src" / "inferlab" / "code" / "data"
PACKAGES = ("click", "jwt", "attr", "typer", "yaml", "yarl", "multidict")
TIER_DEPLOYMENTS = {"small": ("qwen2.5-coder-1.5b", "l4"), "medium": ("qwen2.5-coder-7b", "l4"),
                    "large": ("qwen2.5-coder-32b", "a100-80gb-sxm")}
PER_KIND = 14  # rows of each kind per package (fewer when a package is small)
PREFIX_LINES, SUFFIX_LINES = 60, 20  # what an editor client sends around the cursor


def _files(package: str) -> dict[str, str]:
    root = Path(importlib.import_module(package).__file__ or "").parent
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}


def _functions(chunks: list[Chunk]) -> list[Chunk]:
    return [c for c in chunks if c.symbols and c.text.lstrip().startswith(("def ", "async def ", "@"))]


def _window(text: str, cut: int) -> tuple[str, str]:
    prefix, suffix = text[:cut], text[cut:]
    return "\n".join(prefix.split("\n")[-PREFIX_LINES:]), "\n".join(suffix.split("\n")[:SUFFIX_LINES])


def completions(package: str, files: dict[str, str], chunker: Chunker, defined: dict[str, str]) -> list[LabelledTask]:
    rows: list[LabelledTask] = []
    for path, text in files.items():
        offsets = [0]
        for line in text.split("\n"):
            offsets.append(offsets[-1] + len(line) + 1)
        for chunk in _functions(chunker.chunk(path, text))[:3]:
            body = chunk.text.split("\n")[1:]
            lines = [(i, ln) for i, ln in enumerate(body, start=chunk.start_line) if len(ln.strip()) >= 12]
            if not lines:
                continue
            number, line = lines[len(lines) // 2]
            cut_in_line = len(line) - len(line.lstrip()) + len(line.strip()) // 2
            missing = line[cut_in_line:]
            other = [n for n in defined if n in missing and defined[n] != path]
            prefix, suffix = _window(text, offsets[number] + cut_in_line)
            declarations = sum(len(defined_text) for defined_text in other[:2]) * 20
            label = "small" if len(missing) <= 25 and not other else "medium"
            rows.append(LabelledTask(CodeTask("completion", "python", len(prefix) + len(suffix) + declarations, 1),
                                     label, (len(prefix) + len(suffix)) // 3, max(1, len(missing) // 3),
                                     f"{package}/{path}:{number} single"))
            body_lines = len(body)
            start = offsets[chunk.start_line]  # the line after the signature
            prefix, suffix = _window(text, start)
            missing_text = "\n".join(body)
            rows.append(LabelledTask(CodeTask("completion", "python", len(prefix) + len(suffix), prefix.count("\n") + 1,
                                              True), "medium" if body_lines <= 8 else "large",
                                     (len(prefix) + len(suffix)) // 3, max(1, len(missing_text) // 3),
                                     f"{package}/{path}:{chunk.start_line} multi"))
        if len(rows) >= 2 * PER_KIND:
            break
    return rows


def docs(package: str, files: dict[str, str], chunker: Chunker) -> list[LabelledTask]:
    rows: list[LabelledTask] = []
    for path, text in files.items():
        for chunk in chunker.chunk(path, text):
            if not chunk.symbols:
                continue
            lines = chunk.end_line - chunk.start_line + 1
            is_class = chunk.text.lstrip().startswith("class ")
            label = "small" if lines <= 3 else "large" if is_class or lines > 30 else "medium"
            rows.append(LabelledTask(CodeTask("docs", "python", len(chunk.text), lines, True), label,
                                     len(chunk.text) // 3 + 60, 8 * lines, f"{package}/{path}:{chunk.start_line} docs"))
            if len(rows) % 4 == 0:
                break  # a few per file, from many files
        if len(rows) >= PER_KIND:
            break
    return rows


def _changed(chunk: Chunk, lines: int) -> str:
    """The chunk with ``lines`` of its lines edited (operators flipped, a name changed)."""
    body = chunk.text.split("\n")
    for i in range(1, min(len(body), lines + 1)):
        body[i] = body[i].replace(" + ", " - ").replace("==", "!=").replace("return ", "return not ") + "  # edited"
    return "\n".join(body)


def reviews(package: str, files: dict[str, str], chunker: Chunker) -> list[LabelledTask]:
    rows: list[LabelledTask] = []
    functions = [(path, c) for path, text in files.items() for c in _functions(chunker.chunk(path, text))]
    sizes = (1, 2, 5, 12, 20, 35, 60)
    for index in range(min(PER_KIND, len(functions))):
        picks = functions[index::max(1, len(functions) // 3)][: 1 + index % 3] if index % 4 == 3 else [functions[index]]
        diff, changed = "", 0
        for path, chunk in picks:
            new = _changed(chunk, sizes[index % len(sizes)])
            diff += "".join(difflib.unified_diff(chunk.text.splitlines(True), new.splitlines(True),
                                                 f"a/{path}", f"b/{path}", n=3))
            changed += sum(1 for a, b in zip(chunk.text.split("\n"), new.split("\n"), strict=False) if a != b)
        files_touched = len({p for p, _ in picks})
        one_file = files_touched == 1
        label = "small" if changed <= 2 and one_file else "medium" if changed <= 20 and one_file else "large"
        rows.append(LabelledTask(CodeTask("review", "python", len(diff) + 12 * diff.count("\n"), changed, True), label,
                                 len(diff) // 3 + 150, 150, f"{package}: review of {changed} lines, {files_touched} files"))
    return rows


def build() -> list[LabelledTask]:
    chunker = Chunker()
    rows: list[LabelledTask] = []
    for package in PACKAGES:
        files = _files(package)
        defined = {s.rsplit(".", 1)[-1]: path for path, text in files.items() for c in chunker.chunk(path, text)
                   for s in c.symbols if len(s) > 4}
        rows += completions(package, files, chunker, defined) + docs(package, files, chunker) + reviews(package, files, chunker)
    return rows


def prices(rows: list[LabelledTask]) -> dict[str, dict[str, float]]:
    """USD per request of each tier's deployment, at each kind's mean prompt and output tokens."""
    catalogue = load_catalogue()
    table: dict[str, dict[str, float]] = {}
    for tier, (model, gpu) in TIER_DEPLOYMENTS.items():
        table[tier] = {}
        for kind in ("completion", "review", "docs"):
            of_kind = [r for r in rows if r.task.kind == kind]
            prompt = max(1, round(sum(r.prompt_tokens for r in of_kind) / len(of_kind)))
            output = max(1, round(sum(r.output_tokens for r in of_kind) / len(of_kind)))
            answer = service.cost(catalogue, CostIn(model=model, gpu=gpu, prompt_tokens=prompt, output_tokens=output))
            per_request = answer["rented_usd_per_request"] or answer["owned_usd_per_request"]
            table[tier][kind] = float(per_request)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="rewrite the labelled set and the shipped thresholds")
    args = parser.parse_args()
    set_path, thresholds_path = DATA / "routing_set.jsonl", DATA / "routing_thresholds.json"
    if args.write:
        DATA.mkdir(parents=True, exist_ok=True)
        save_set(build(), set_path)
    rows = load_set(set_path)
    thresholds = fit(rows, DEFAULT_THRESHOLDS.weights, version="routing_set.jsonl")
    if args.write:
        thresholds.save(thresholds_path)
    table = prices(rows)
    result = report(thresholds, rows, table)
    result["default_thresholds"] = report(DEFAULT_THRESHOLDS, rows, table)["router"]
    result["usd_per_request"] = table
    result["deployments"] = {tier: f"{m}@{g}" for tier, (m, g) in TIER_DEPLOYMENTS.items()}
    result["decisions"] = decisions(thresholds, rows)
    if args.write:
        (DATA / "routing_report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "decisions"}, indent=2))


if __name__ == "__main__":
    main()
