"""A batch's input file: OpenAI's JSONL, one request a line (``custom_id``, ``method``, ``url``,
``body``), checked when the batch is created — every refusal a 400 naming the line — and read
again by the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from inferlab.batches.model import ENDPOINTS
from inferlab.errors import InvalidRequest
from inferlab.types import Caller, RequestKind

KIND_OF = {"/v1/chat/completions": RequestKind.CHAT, "/v1/completions": RequestKind.COMPLETION,
           "/v1/embeddings": RequestKind.EMBEDDING}
Validate = Callable[[RequestKind, Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class BatchLine:
    line: int  # 0-based position in the input file
    custom_id: str
    body: dict[str, Any]
    size: int  # the line's bytes


def _bad(line: int, message: str) -> InvalidRequest:
    return InvalidRequest(f"Line {line + 1} of the input file: {message}", param="input_file_id",
                          code="invalid_batch_line")


def parse_lines(content: bytes, endpoint: str, validate: Validate | None = None, *,
                max_lines: int = 50_000) -> list[BatchLine]:
    """The input's lines; with ``validate``, each body checked as its route checks it."""
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"Unsupported endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}", param="endpoint",
                             code="invalid_value")
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for index, raw in enumerate(line for line in content.split(b"\n") if line.strip()):
        if index >= max_lines:
            raise _bad(index, f"a batch holds at most {max_lines} requests")
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _bad(index, "not a JSON object") from None
        if not isinstance(item, dict):
            raise _bad(index, "not a JSON object")
        custom_id, body = item.get("custom_id"), item.get("body")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
            raise _bad(index, "'custom_id' must be a string of 1 to 512 characters")
        if custom_id in seen:
            raise _bad(index, f"'custom_id' {custom_id!r} is not unique")
        seen.add(custom_id)
        if item.get("method", "POST") != "POST":
            raise _bad(index, "'method' must be POST")
        if item.get("url") != endpoint:
            raise _bad(index, f"'url' must be the batch's endpoint {endpoint}")
        if not isinstance(body, dict):
            raise _bad(index, "'body' must be an object")
        if body.get("stream"):
            raise _bad(index, "'body.stream' is not allowed in a batch")
        if validate is not None:
            try:
                validate(KIND_OF[endpoint], body)
            except InvalidRequest as exc:
                raise _bad(index, exc.message) from None
        lines.append(BatchLine(index, custom_id, body, len(raw)))
    if not lines:
        raise InvalidRequest("The input file has no requests", param="input_file_id", code="empty_batch")
    return lines


def caller_record(caller: Caller) -> dict[str, Any]:
    return {"tenant_id": caller.tenant_id, "user_id": caller.user_id, "key_id": caller.key_id, "role": caller.role,
            "address": caller.address, "models": sorted(caller.models) if caller.models is not None else None}


def caller_of(record: dict[str, Any]) -> Caller:
    models = record.get("models")
    return Caller(tenant_id=record["tenant_id"], user_id=record.get("user_id"), key_id=record.get("key_id"),
                  role=record.get("role"), address=record.get("address") or "batch",
                  models=frozenset(models) if models is not None else None)
