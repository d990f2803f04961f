"""Unified diffs: which lines of which files a review comment may point at.

A comment points at a line of the *new* version that the diff shows (an added or a context
line), by its path and new-side line number. ``numbered`` renders the diff with those numbers in
front, so a model reads the numbers it must answer with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from inferlab.errors import InvalidRequest

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_DIFF_CHARS = 200_000


@dataclass
class FileDiff:
    path: str
    lines: dict[int, str] = field(default_factory=dict)  # new-side line number → its text
    added: set[int] = field(default_factory=set)


@dataclass
class Diff:
    files: dict[str, FileDiff]
    numbered: str

    def has_line(self, path: str, line: int) -> bool:
        found = self.files.get(path)
        return found is not None and line in found.lines


def _path(header: str) -> str:
    path = header[4:].split("\t", 1)[0].strip()
    return path[2:] if path.startswith(("a/", "b/")) else path


def parse_diff(text: object) -> Diff:
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("'diff' must be a non-empty unified diff", param="diff", code="invalid_value")
    if len(text) > MAX_DIFF_CHARS:
        raise InvalidRequest(f"'diff' is longer than {MAX_DIFF_CHARS} characters", param="diff", code="invalid_value")
    files: dict[str, FileDiff] = {}
    out: list[str] = []
    current: FileDiff | None = None
    new_line = old_left = new_left = 0
    for raw in text.split("\n"):
        hunk = _HUNK.match(raw)
        if hunk:
            new_line = int(hunk.group(3))
            old_left, new_left = int(hunk.group(2) or 1), int(hunk.group(4) or 1)
            out.append(raw)
            continue
        if old_left <= 0 and new_left <= 0:  # between hunks: headers
            if raw.startswith("+++ "):
                path = _path(raw)
                current = None if path == "/dev/null" else files.setdefault(path, FileDiff(path))
            out.append(raw)
            continue
        if raw.startswith("\\"):  # "\ No newline at end of file"
            out.append(f"{'':>6} {raw}")
            continue
        if raw.startswith("-"):
            old_left -= 1
            out.append(f"{'':>6} {raw}")
            continue
        if current is not None:  # "+", " " and "" (an empty context line whose space was stripped)
            current.lines[new_line] = raw[1:]
            if raw.startswith("+"):
                current.added.add(new_line)
        if not raw.startswith("+"):
            old_left -= 1
        new_left -= 1
        out.append(f"{new_line:>6} {raw}")
        new_line += 1
    if not any(f.lines for f in files.values()):
        raise InvalidRequest("'diff' has no hunk with added or context lines", param="diff", code="invalid_value")
    return Diff({p: f for p, f in files.items() if f.lines}, "\n".join(out))
