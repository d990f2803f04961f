"""Review quality on planted bugs: does ``/v1/code/review`` point at the line that broke?

Diffs are made from real functions of installed packages (click, jwt, attr, typer, yaml): one line
of each is mutated the way bugs look (a comparison flipped, an off-by-one, a negation dropped, a
``+`` turned into ``-``) and the diff of that function is sent for review. Reported per model:
answers valid on the first try / after the retry / refused, diffs with a comment on the planted
line (± 1 line) against what comments on random lines of the diff would find by chance,
comments per review, latency.

    python bench/codelab_review.py --base-url http://127.0.0.1:8000 --model smollm2-135m [--diffs 12]

(``inferlab serve`` with the model first; the real engine is needed: it enforces the schema.)
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import math
import re
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from inferlab.code.chunking import Chunker
from inferlab.code.diff import parse_diff

PACKAGES = ("click", "jwt", "attr", "typer", "yaml")
MUTATIONS = [(re.compile(r" < "), " <= "), (re.compile(r" == "), " != "), (re.compile(r"\bnot "), ""),
             (re.compile(r" \+ 1\b"), ""), (re.compile(r" and "), " or "), (re.compile(r" >= "), " > ")]


def _shifted(diff: str, offset: int) -> str:
    """The hunk headers of a diff of one function, moved to the function's place in its file."""
    def move(match: re.Match[str]) -> str:
        return f"@@ -{int(match[1]) + offset}{match[2]} +{int(match[3]) + offset}{match[4]} @@"

    return re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@", move, diff, flags=re.MULTILINE)


def planted(limit: int, per_file: int = 2) -> list[tuple[str, str, int]]:
    """(label, diff, new-side line of the planted change), at most ``per_file`` from one file."""
    chunker, found = Chunker(), []
    for package in PACKAGES:
        root = Path(importlib.import_module(package).__file__ or "").parent
        for path in sorted(root.rglob("*.py")):
            relative = f"{package}/{path.relative_to(root)}"
            before = len(found)
            for chunk in chunker.chunk(relative, path.read_text()):
                if len(found) - before >= per_file:
                    break
                if not chunk.text.lstrip().startswith("def ") or chunk.end_line - chunk.start_line > 40:
                    continue
                lines = chunk.text.split("\n")
                for index, line in enumerate(lines[1:], start=1):
                    for pattern, replacement in MUTATIONS:
                        code = line.lstrip()
                        if pattern.search(line) and not code.startswith(("#", '"', "'")) and '"""' not in line:
                            broken = [*lines[:index], pattern.sub(replacement, line, count=1), *lines[index + 1:]]
                            diff = "".join(difflib.unified_diff(
                                [f"{x}\n" for x in lines], [f"{x}\n" for x in broken], f"a/{relative}", f"b/{relative}", n=3))
                            diff = _shifted(diff, chunk.start_line - 1)
                            found.append((f"{relative}:{chunk.start_line + index}", diff, chunk.start_line + index))
                            break
                    else:
                        continue
                    break
                if len(found) >= limit:
                    return found
            if len(found) >= limit * (PACKAGES.index(package) + 1) / len(PACKAGES):
                break
    return found


def post(base: str, body: dict[str, object]) -> tuple[int, dict[str, object], float]:
    started = time.perf_counter()
    request = urllib.request.Request(base + "/v1/code/review", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--diffs", type=int, default=12)
    parser.add_argument("--max-comments", type=int, default=1)
    args = parser.parse_args()
    cases = planted(args.diffs)
    rows, times, chance = [], [], []
    for label, diff, line in cases:
        shown = sorted(parse_diff(diff).files[label.rsplit(":", 1)[0]].lines)
        near = sum(abs(n - line) <= 1 for n in shown)
        k = min(args.max_comments, len(shown))
        chance.append(1 - math.comb(len(shown) - near, k) / math.comb(len(shown), k))
        status, body, seconds = post(args.base_url, {"diff": diff, "model": args.model, "max_tokens": 400,
                                                     "max_comments": args.max_comments})
        times.append(seconds)
        comments = body.get("comments", []) if status == 200 else []
        hit = any(abs(int(c["line"]) - line) <= 1 for c in comments)  # type: ignore[index]
        rows.append({"case": label, "status": status, "comments": len(comments), "hit": hit,
                     "error": None if status == 200 else body.get("error")})
        print(json.dumps(rows[-1]), file=sys.stderr)
    valid = [r for r in rows if r["status"] == 200]
    print(json.dumps({
        "model": args.model, "diffs": len(rows), "valid": len(valid), "refused": len(rows) - len(valid),
        "planted_line_found": sum(bool(r["hit"]) for r in rows),
        "found_by_chance_expected": round(sum(chance), 2),  # comments on random lines of the diff
        "comments_per_review": round(statistics.mean([int(r["comments"]) for r in valid]), 2) if valid else None,
        "seconds_p50": round(statistics.median(times), 1), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
