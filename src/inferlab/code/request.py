"""The editor-client request of ``POST /v1/code/completions``, checked field by field.

``{language, filepath, prefix, suffix, git_url, declarations[], snippets[]}`` as Tabby-style
clients send it (declarations from the editor's go-to-definition, snippets from recently changed
or opened files), plus the sampling knobs InferLab lets through. Bad input is an
``InvalidRequest`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from inferlab.code.fim import ContextFile
from inferlab.errors import InvalidRequest

Mode = Literal["auto", "single_line", "multi_line"]
MAX_CONTEXT_ITEMS = 32
DEFAULT_MAX_TOKENS = 64


@dataclass(frozen=True, slots=True)
class CodeCompletionRequest:
    language: str
    prefix: str
    suffix: str = ""
    filepath: str | None = None
    git_url: str | None = None
    declarations: tuple[ContextFile, ...] = ()
    snippets: tuple[ContextFile, ...] = ()
    model: str | None = None
    tier: str | None = None  # a CodeLab tier asked for by name (overrides the routing decision)
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    seed: int | None = None
    mode: Mode = "auto"

    @property
    def single_line(self) -> bool:
        """Mid-line (text after the cursor on its line) completes that line only; "auto" decides so."""
        if self.mode != "auto":
            return self.mode == "single_line"
        return bool(self.suffix.split("\n", 1)[0].strip())


def _fail(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{field}': {message}", param=field, code="invalid_value")


def _string(body: dict[str, Any], field: str, *, required: bool = False, limit: int = 1_000_000) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise InvalidRequest(f"Missing required parameter: '{field}'", param=field, code="missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise _fail(field, "expected a string")
    if len(value) > limit:
        raise _fail(field, f"at most {limit} characters")
    return value


def _items(body: dict[str, Any], field: str) -> tuple[ContextFile, ...]:
    value = body.get(field)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_CONTEXT_ITEMS:
        raise _fail(field, f"expected an array of at most {MAX_CONTEXT_ITEMS} objects")
    items = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, "expected an object with 'filepath' and 'body'")
        path, text = item.get("filepath"), item.get("body")
        if not isinstance(path, str) or not isinstance(text, str):
            raise _fail(where, "'filepath' and 'body' must be strings")
        items.append(ContextFile(path, text))
    return tuple(items)


def parse_code_completion(body: Any, *, max_tokens_limit: int) -> CodeCompletionRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_body")
    language = _string(body, "language", required=True, limit=64) or ""
    prefix = _string(body, "prefix", required=True) or ""
    max_tokens = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= max_tokens_limit:
        raise _fail("max_tokens", f"must be an integer between 1 and {max_tokens_limit}")
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
        raise _fail("temperature", "must be a number between 0 and 2")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _fail("seed", "expected an integer")
    mode = body.get("mode", "auto")
    if mode not in ("auto", "single_line", "multi_line"):
        raise _fail("mode", "expected 'auto', 'single_line' or 'multi_line'")
    return CodeCompletionRequest(
        language=language.lower(), prefix=prefix, suffix=_string(body, "suffix") or "",
        filepath=_string(body, "filepath", limit=4096), git_url=_string(body, "git_url", limit=4096),
        declarations=_items(body, "declarations"), snippets=_items(body, "snippets"),
        model=_string(body, "model", limit=256), tier=_string(body, "tier", limit=64),
        max_tokens=max_tokens, temperature=float(temperature), seed=seed, mode=mode,
    )
