"""Secrets out of text that came from elsewhere (an engine's error body) before it is logged or shown.

``redact`` replaces what looks like a credential — bearer/basic tokens, ``Authorization`` values,
OpenAI-style ``sk-...`` keys, InferLab ``il-...`` keys, JWTs, ``api_key=...``-style pairs, passwords
in URLs, long random tokens — and any secret the caller names literally (the engine's own API key),
then strips control characters and bounds the length. Pure functions, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
MAX_CHARS = 2000

# Order matters: whole header values first, then prefixed keys, then key=value pairs, then anything
# that merely looks random.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(authorization|proxy-authorization)(\"?\s*[:=]\s*\"?)[^\"\r\n,;}]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(Basic)\s+(?=\S*[0-9=+/]|\S+[A-Z])[A-Za-z0-9+/]{8,}={0,2}"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{6,}"), rf"\1-{REDACTED}"),
    (re.compile(r"\bil-[A-Za-z0-9_-]{6,}"), f"il-{REDACTED}"),
    (re.compile(r"\b(hf|gsk|xai|ghp|gho|github_pat|glpat|AIza)[_-]?[A-Za-z0-9_-]{16,}"), rf"\1{REDACTED}"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{REDACTED}@"),
    (
        re.compile(
            r"(?i)([\"']?\b[a-z0-9_.-]*(?:api[_-]?key|apikey|access[_-]?key|secret|token|password|passwd|pwd"
            r"|credentials?|session[_-]?id|cookie)\b[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}\]]+"
        ),
        rf"\1{REDACTED}",
    ),
    # 32+ characters mixing letters and digits, with no spaces: a key or a token whatever its name
    (re.compile(r"\b(?=[A-Za-z0-9_+/=-]{0,200}\d)(?=[A-Za-z0-9_+/=-]{0,200}[A-Za-z])[A-Za-z0-9_+/=-]{32,}"), REDACTED),
)
_CONTROL = re.compile(r"(?:\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f-\x9f])+")
_SPACE = re.compile(r"\s+")


def redact(text: str, known: Iterable[str | None] = (), max_chars: int = MAX_CHARS) -> str:
    """``text`` with credentials replaced by ``[REDACTED]``, on one line, at most ``max_chars`` long.

    ``known``: secrets to remove wherever they appear, whatever they look like (the API key the
    gateway sends to this engine).
    """
    text = text[: max_chars * 4]  # bound the work before the regexes run
    for secret in known:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text
