"""Type and bound checks for the OpenAI request fields the gateway knows.

Unknown fields pass through to the engine untouched; known ones are checked here, by small
table-driven checks (cheaper on the hot path than building a model object per request).
Every failure is an ``InvalidRequest`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferlab.errors import InvalidRequest
from inferlab.types import RequestKind

Check = Callable[[str, Any], None]

ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})


def _fail(field: str, message: str) -> None:
    raise InvalidRequest(f"Invalid value for '{field}': {message}", param=field, code="invalid_value")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(low: int, high: int | None = None) -> Check:
    def check(field: str, value: Any) -> None:
        if not _is_int(value):
            _fail(field, "expected an integer")
        if value < low or (high is not None and value > high):
            _fail(field, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")

    return check


def number(low: float, high: float) -> Check:
    def check(field: str, value: Any) -> None:
        if not _is_number(value):
            _fail(field, "expected a number")
        if not low <= value <= high:
            _fail(field, f"must be between {low} and {high}")

    return check


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(field, "expected a boolean")


def string(field: str, value: Any) -> None:
    if not isinstance(value, str):
        _fail(field, "expected a string")


def stop(field: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or len(value) > 16 or not all(isinstance(s, str) for s in value):
        _fail(field, "expected a string or a list of at most 16 strings")


def stream_options(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        _fail(field, "expected an object")
    if "include_usage" in value and not isinstance(value["include_usage"], bool):
        _fail(field + ".include_usage", "expected a boolean")


def messages(field: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        _fail(field, "expected a non-empty array of messages")
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            _fail(where, "expected an object")
        role = message.get("role")
        if role not in ROLES:
            _fail(where + ".role", f"expected one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            _fail(where + ".content", "expected a string or an array of content parts")


def _token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(t) and t >= 0 for t in value)


def prompt(field: str, value: Any) -> None:
    if isinstance(value, str) or _token_array(value):
        return
    if isinstance(value, list) and value and (
        all(isinstance(p, str) for p in value) or all(_token_array(p) for p in value)
    ):
        return
    _fail(field, "expected a string, an array of strings, or token arrays")


def embedding_input(field: str, value: Any) -> None:
    if isinstance(value, str):
        if not value:
            _fail(field, "must not be empty")
        return
    prompt(field, value)
    if isinstance(value, list) and len(value) > 2048:
        _fail(field, "at most 2048 inputs per request")


def encoding_format(field: str, value: Any) -> None:
    if value not in ("float", "base64"):
        _fail(field, "expected 'float' or 'base64'")


def _sampling(max_tokens: int, max_n: int) -> dict[str, Check]:
    return {
        "model": string,
        "stream": boolean,
        "stream_options": stream_options,
        "max_tokens": integer(1, max_tokens),
        "max_completion_tokens": integer(1, max_tokens),
        "n": integer(1, max_n),
        "temperature": number(0.0, 2.0),
        "top_p": number(0.0, 1.0),
        "presence_penalty": number(-2.0, 2.0),
        "frequency_penalty": number(-2.0, 2.0),
        "seed": integer(-(2**63), 2**63 - 1),
        "stop": stop,
        "user": string,
        "logprobs": boolean,
    }


def build_checks(max_tokens: int, max_n: int) -> dict[RequestKind, tuple[tuple[str, ...], dict[str, Check]]]:
    """For each request kind: its required fields and the checks of its known fields."""
    chat = _sampling(max_tokens, max_n) | {"messages": messages, "top_logprobs": integer(0, 20)}
    completion = _sampling(max_tokens, max_n) | {
        "prompt": prompt, "suffix": string, "echo": boolean,
        "best_of": integer(1, max_n), "logprobs": integer(0, 5),
    }
    embedding = {
        "model": string, "input": embedding_input, "encoding_format": encoding_format,
        "dimensions": integer(1, 65536), "user": string,
    }
    return {
        RequestKind.CHAT: (("model", "messages"), chat),
        RequestKind.COMPLETION: (("model", "prompt"), completion),
        RequestKind.EMBEDDING: (("model", "input"), embedding),
    }


class RequestValidator:
    def __init__(self, max_tokens: int, max_n: int) -> None:
        self._checks = build_checks(max_tokens, max_n)

    def validate(self, kind: RequestKind, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object", code="invalid_body")
        required, checks = self._checks[kind]
        for field in required:
            if body.get(field) is None:
                raise InvalidRequest(f"Missing required parameter: '{field}'", param=field, code="missing_required_parameter")
        for field, value in body.items():
            check = checks.get(field)
            if check is not None and value is not None:
                check(field, value)
        return body
