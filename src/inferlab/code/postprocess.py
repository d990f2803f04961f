"""What the gateway does to a raw completion before an editor shows it, so every client benefits:
pure functions over strings, applied in order by ``clean_completion``.

1. single-line mode (the cursor is mid-line): keep the first line;
2. multi-line: stop where the block ends (a line indented less than the cursor's line, which the
   suffix does not continue) — the model wandering into the next function is not a suggestion;
3. repetition: drop a line repeated more than twice in a row, and lines that re-type the prefix's
   last line;
4. suffix overlap: cut the completion's tail where it re-types the text after the cursor (the
   closing ``)`` the editor already has, the suffix's first lines);
5. nothing left but whitespace: no suggestion ("").
"""

from __future__ import annotations

MAX_REPEATS = 2


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def single_line(text: str) -> str:
    return text.split("\n", 1)[0]


def stop_at_block_end(text: str, prefix: str) -> str:
    """Lines up to (not including) the first non-blank one indented less than the cursor's block."""
    current = prefix.rsplit("\n", 1)[-1]
    if current.strip():  # the cursor line has code: its own indentation is the block's
        base = _indent(current)
    else:  # a blank line: the block is the one the previous code line opened or was in
        previous = next((line for line in reversed(prefix.split("\n")[:-1]) if line.strip()), "")
        base = _indent(previous) + (1 if previous.rstrip().endswith((":", "{", "(", "[")) else 0)
    lines = text.split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and _indent(line) < base:
            break
        kept.append(line)
    return "\n".join(kept).rstrip() if len(kept) < len(lines) else "\n".join(kept)


def drop_repetitions(text: str, prefix: str) -> str:
    lines = text.split("\n")
    last_prefix_line = prefix.rsplit("\n", 1)[-1].strip()
    kept: list[str] = []
    run = 0
    for index, line in enumerate(lines):
        if kept and line.strip() and line == kept[-1]:
            run += 1
            if run >= MAX_REPEATS:
                break
        else:
            run = 0
        if index > 0 and last_prefix_line and line.strip() == last_prefix_line and len(last_prefix_line) > 3:
            break
        kept.append(line)
    return "\n".join(kept)


def trim_suffix_overlap(text: str, suffix: str) -> str:
    """Cut the completion where its end re-types the beginning of the suffix."""
    if not suffix or not text:
        return text
    first = suffix.split("\n", 1)[0]
    if first.strip():  # mid-line: the longest end of the completion that the suffix line starts with
        for size in range(min(len(text), len(first)), 0, -1):
            if first.startswith(text[-size:]) and text[-size:].strip():
                return text[:-size]
        return text
    following = [line for line in suffix.split("\n") if line.strip()][:3]
    lines = text.split("\n")
    for start in range(1, len(lines)):
        window = [line for line in lines[start:] if line.strip()]
        if window and window == following[: len(window)]:
            return "\n".join(lines[:start]).rstrip()
    return text


def clean_completion(text: str, prefix: str, suffix: str, *, single: bool) -> str:
    text = single_line(text) if single else stop_at_block_end(text, prefix)
    text = drop_repetitions(text, prefix)
    text = trim_suffix_overlap(text, suffix)
    return text if text.strip() else ""
