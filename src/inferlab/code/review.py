"""Code review as structured comments ``{path, line, severity, category, message, suggestion}``.

The engine is asked with ``response_format: json_schema`` and a schema made *for this diff*: the
paths are the diff's, and each path's lines are the new-side lines the diff shows — a grammar-
constrained engine (llama.cpp, vLLM) cannot produce a comment pointing outside the diff. The
answer is still validated in the gateway against the general schema (``COMMENTS_SCHEMA``, with
``jsonschema``) and against the diff's lines, since not every engine constrains its output; an
invalid answer is asked for once more, then refused with a clear error.

The schema also bounds the comments' text to what ``max_tokens`` can hold (``fitted_shape``): an
answer cut off at ``max_tokens`` is unparseable JSON, and a grammar-constrained model writes its
strings to whatever length the schema allows. The first attempt sizes the text for a typical
review (a few comments); an answer cut off anyway is asked for again with a shape that fits the
budget in the worst case (a token is at least one character), fewer comments if need be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from inferlab.code.diff import Diff, parse_diff
from inferlab.errors import InvalidRequest, UnsupportedFeature, UpstreamError

SEVERITIES = ("info", "warning", "error")
CATEGORIES = ("bug", "security", "performance", "maintainability", "style", "docs", "tests")
MAX_COMMENTS = 20
MAX_TEXT = 400  # characters of a message or suggestion: bounded, so a grammar-constrained answer ends
MIN_TEXT = 24  # characters a message or suggestion keeps, however small the budget
TYPICAL_COMMENTS = 3  # the first attempt sizes the text for this many comments
ANSWER_TOKENS = 16  # the answer's own braces, key and whitespace
COMMENT_TOKENS = 70  # a comment's keys, path, line, enums and the whitespace llama.cpp's grammar lets in

_COMMENT = {
    "type": "object",
    "properties": {
        "path": {"type": "string"}, "line": {"type": "integer", "minimum": 1},
        "severity": {"enum": list(SEVERITIES)}, "category": {"enum": list(CATEGORIES)},
        "message": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        "suggestion": {"type": "string", "maxLength": MAX_TEXT},
    },
    "required": ["path", "line", "severity", "category", "message", "suggestion"],
    "additionalProperties": False,
}
COMMENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"comments": {"type": "array", "items": _COMMENT, "maxItems": MAX_COMMENTS}},
    "required": ["comments"],
    "additionalProperties": False,
}

SYSTEM = ("You review code changes. Point out bugs first, then security, performance and maintainability "
          "problems; skip style nitpicks. Answer only with JSON: {\"comments\": [{\"path\", \"line\", \"severity\", "
          "\"category\", \"message\", \"suggestion\"}]}. `line` is the number printed at the left of the diff line "
          "you comment on. An empty list is a valid answer when the change is fine.")


class ReviewInvalid(UpstreamError):
    """The engine's review did not validate twice in a row."""

    default_code = "invalid_review"


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    diff: Diff
    model: str | None = None
    tier: str | None = None
    max_tokens: int = 768
    stream: bool = False
    max_comments: int = MAX_COMMENTS


def parse_review(body: Any) -> ReviewRequest:
    try:
        import jsonschema  # noqa: F401 - answers are validated with it
    except ImportError:
        raise UnsupportedFeature("Code review needs the `code` extra (pip install 'inferlab[code]')") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_body")
    model, tier = body.get("model"), body.get("tier")
    for name, value in (("model", model), ("tier", tier)):
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"Invalid value for '{name}': expected a string", param=name, code="invalid_value")
    max_tokens = body.get("max_tokens", 768)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 16 <= max_tokens <= 4096:
        raise InvalidRequest("Invalid value for 'max_tokens': between 16 and 4096", param="max_tokens", code="invalid_value")
    max_comments = body.get("max_comments", MAX_COMMENTS)
    if not isinstance(max_comments, int) or isinstance(max_comments, bool) or not 1 <= max_comments <= MAX_COMMENTS:
        raise InvalidRequest(f"Invalid value for 'max_comments': between 1 and {MAX_COMMENTS}", param="max_comments",
                             code="invalid_value")
    return ReviewRequest(parse_diff(body.get("diff")), model, tier, max_tokens, body.get("stream") is True, max_comments)


@dataclass(frozen=True, slots=True)
class ReviewShape:
    """How many comments an answer may hold and how long each one's message and suggestion may be."""

    comments: int
    message: int
    suggestion: int

    @property
    def worst_case_tokens(self) -> int:
        """Tokens the largest answer of this shape takes if every character is a token."""
        return ANSWER_TOKENS + self.comments * (COMMENT_TOKENS + self.message + self.suggestion)


def fitted_shape(max_tokens: int, max_comments: int, *, sized_for: int | None = None) -> ReviewShape:
    """The text bounds for ``sized_for`` comments within ``max_tokens`` (then at most ``max_comments``
    comments). Without ``sized_for`` the shape fits in the worst case: as many comments as fit with
    the shortest text, never more than asked for."""
    if sized_for is None:
        fits = (max_tokens - ANSWER_TOKENS) // (COMMENT_TOKENS + 2 * MIN_TEXT)
        comments = sized_for = min(max_comments, max(1, fits))
    else:
        comments = max_comments
    text = (max_tokens - ANSWER_TOKENS) // max(1, sized_for) - COMMENT_TOKENS
    text = max(2 * MIN_TEXT, min(2 * MAX_TEXT, text))
    suggestion = min(MAX_TEXT, max(MIN_TEXT, text * 2 // 5))
    return ReviewShape(comments, min(MAX_TEXT, text - suggestion), suggestion)


def constrained_schema(diff: Diff, shape: ReviewShape | None = None) -> dict[str, Any]:
    """The comments schema narrowed to this diff: each path with its own lines, at most
    ``shape.comments`` comments with text no longer than the shape's."""
    shape = shape or ReviewShape(MAX_COMMENTS, MAX_TEXT, MAX_TEXT)
    texts = {"message": {"type": "string", "minLength": 1, "maxLength": shape.message},
             "suggestion": {"type": "string", "maxLength": shape.suggestion}}
    per_path = [{**_COMMENT, "properties": {**_COMMENT["properties"], **texts,  # type: ignore[dict-item]
                                             "path": {"const": path}, "line": {"enum": sorted(f.lines)}}}
                for path, f in sorted(diff.files.items())]
    items = per_path[0] if len(per_path) == 1 else {"anyOf": per_path}
    return {**COMMENTS_SCHEMA, "properties": {"comments": {"type": "array", "items": items, "maxItems": shape.comments}}}


def first_shape(request: ReviewRequest) -> ReviewShape:
    return fitted_shape(request.max_tokens, request.max_comments,
                        sized_for=min(request.max_comments, TYPICAL_COMMENTS))


def review_body(request: ReviewRequest, model: str, problem: str | None = None,
                shape: ReviewShape | None = None) -> dict[str, Any]:
    shape = shape or first_shape(request)
    user = f"Review this change.\n\n{request.diff.numbered}"
    if problem:
        user += f"\n\nYour previous answer was rejected: {problem}. Answer again with valid JSON."
    return {
        "model": model, "max_tokens": request.max_tokens, "temperature": 0.2,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "code_review", "strict": True,
                                            "schema": constrained_schema(request.diff, shape)}},
    }


def validate_review(text: str, diff: Diff) -> list[dict[str, Any]]:
    """The comments, or ``ValueError`` saying why the answer is not a valid review of this diff."""
    import jsonschema

    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    try:
        jsonschema.validate(payload, COMMENTS_SCHEMA)
    except jsonschema.ValidationError as exc:
        raise ValueError(f"schema: {exc.message}") from None
    comments: list[dict[str, Any]] = payload["comments"]
    for comment in comments:
        if not diff.has_line(comment["path"], comment["line"]):
            raise ValueError(f"line {comment['line']} of {comment['path']!r} is not in the diff")
    return comments
