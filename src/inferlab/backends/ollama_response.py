"""Ollama's native answers → OpenAI's shapes: tool calls, log probabilities, finish reasons.

Ollama sends a tool call whole, in one event, with ``arguments`` as a JSON object (and an ``id``
from v0.12 on); OpenAI wants ``{"id", "type": "function", "index", "function": {"name",
"arguments": "<JSON text>"}}`` and ``finish_reason: "tool_calls"`` on a reply that called tools.
Ollama's log probabilities (``[{"token", "logprob", "bytes", "top_logprobs"}]``) are already
OpenAI's chat shape; the legacy completions API wants parallel lists instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from inferlab.errors import UpstreamError


@dataclass(slots=True)
class ReplyState:
    """What one reply has sent so far: tool calls (for their indexes) and text (for offsets)."""

    tool_calls: int = 0
    text_offset: int = 0


def finish_reason(event: dict[str, Any], state: ReplyState) -> str | None:
    if not event.get("done"):
        return None
    if event.get("done_reason") == "length":
        return "length"
    return "tool_calls" if state.tool_calls else "stop"


def tool_calls(message: dict[str, Any], state: ReplyState, backend: str) -> list[dict[str, Any]]:
    """The OpenAI ``tool_calls`` of an Ollama message, numbered after those already sent."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UpstreamError(f"engine {backend} sent tool_calls that are not a list")
    converted = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise UpstreamError(f"engine {backend} sent a tool call without a function name")
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        call_id = call.get("id")
        converted.append({
            "index": state.tool_calls,
            "id": call_id if isinstance(call_id, str) and call_id else "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {"name": function["name"], "arguments": text},
        })
        state.tool_calls += 1
    return converted


def _token(entry: dict[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token", ""))
    raw = entry.get("bytes")
    return {
        "token": token,
        "logprob": float(entry.get("logprob", 0.0)),
        "bytes": raw if isinstance(raw, list) else list(token.encode()),
    }


def chat_logprobs(event: dict[str, Any]) -> dict[str, Any] | None:
    entries = event.get("logprobs")
    if not isinstance(entries, list):
        return None
    content = []
    for entry in entries:
        item = _token(entry)
        item["top_logprobs"] = [_token(alt) for alt in entry.get("top_logprobs") or []]
        content.append(item)
    return {"content": content}


def completion_logprobs(event: dict[str, Any], state: ReplyState) -> dict[str, Any] | None:
    entries = event.get("logprobs")
    if not isinstance(entries, list):
        return None
    tokens, offsets, values, tops = [], [], [], []
    for entry in entries:
        token = str(entry.get("token", ""))
        tokens.append(token)
        values.append(float(entry.get("logprob", 0.0)))
        offsets.append(state.text_offset)
        state.text_offset += len(token)
        tops.append({str(alt.get("token", "")): float(alt.get("logprob", 0.0)) for alt in entry.get("top_logprobs") or []})
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def missing_logprobs(native: dict[str, Any], event: dict[str, Any]) -> bool:
    """Logprobs were asked for, the event carries generated text, and no logprobs came with it:
    an Ollama older than 0.12.11, which ignores the request for them."""
    if not native.get("logprobs") or isinstance(event.get("logprobs"), list):
        return False
    message = event.get("message") or {}
    return bool(event.get("response") or (isinstance(message, dict) and message.get("content")))
