"""Retrieval quality on real repositories: does the search find the chunk that defines the symbol
used at the cursor?

Cases are made from the repository itself: every call ``name(`` of a function or class defined in
exactly one *other* file of the repository becomes a cursor just after the ``(`` (prefix = the
file up to there, suffix = the rest); the expected hit is a chunk of the defining file whose
symbols include ``name``. hit@k is the share of cases with such a chunk among the first k hits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from inferlab.code.repo_index import RepoIndex, cursor_query, cursor_symbol

_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w{3,})\(")


@dataclass(frozen=True, slots=True)
class CursorCase:
    path: str
    prefix: str
    suffix: str
    symbol: str
    defined_in: str


def definitions(index: RepoIndex) -> dict[str, set[str]]:
    """Top-level (and member) names → the files that define them."""
    where: dict[str, set[str]] = {}
    for chunk in index.chunks():
        for symbol in chunk.symbols:
            where.setdefault(symbol.rsplit(".", 1)[-1], set()).add(chunk.path)
    return where


def cursor_cases(index: RepoIndex, files: Mapping[str, str], *, per_file: int = 5, limit: int = 400,
                 typed: bool = True) -> list[CursorCase]:
    """``typed``: the cursor just after ``name(``; else at the start of that line, the name not yet
    written (the search then has only the code above to go on)."""
    defined = definitions(index)
    cases: list[CursorCase] = []
    for path in sorted(files):
        text = files[path]
        seen: set[str] = set()
        for match in _CALL.finditer(text):
            name = match.group(1)
            owners = defined.get(name, set())
            if name in seen or len(owners) != 1 or path in owners:
                continue
            line_start = text.rfind("\n", 0, match.start()) + 1
            if text[line_start:match.start()].lstrip().startswith(("#", "def ", "class ", "import ", "from ")):
                continue
            seen.add(name)
            cut = match.end() if typed else line_start
            cases.append(CursorCase(path, text[:cut], text[cut:], name, next(iter(owners))))
            if len(seen) >= per_file:
                break
        if len(cases) >= limit:
            break
    return cases[:limit]


def hit_rank(index: RepoIndex, case: CursorCase, k: int, vector: list[float] | None = None) -> int | None:
    """1-based rank of the first defining chunk among the first k hits, or None."""
    hits = index.search(cursor_query(case.prefix, case.suffix), exclude_path=case.path, limit=k, vector=vector,
                        symbol=cursor_symbol(case.prefix))
    for rank, hit in enumerate(hits, start=1):
        if hit.chunk.path == case.defined_in and any(s.rsplit(".", 1)[-1] == case.symbol for s in hit.chunk.symbols):
            return rank
    return None
