"""A Responses API request (``POST /v1/responses``), parsed and turned into a chat body.

The Responses API is translated onto chat completions: ``instructions`` becomes the system
message, ``input`` (a string, or message / function-call items) the conversation after the
previous response's, ``max_output_tokens`` ``max_tokens``, ``text.format`` ``response_format``,
function tools the chat ``tools``. A field the gateway cannot honour is refused with a 400
naming it, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferlab.errors import InvalidRequest

REQUEST_NOTE = "responses.request"  # the parsed request, on the call, for the Responses step
SUPPORTED = frozenset({
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "text", "tools",
    "tool_choice", "parallel_tool_calls", "stream", "store", "previous_response_id", "metadata", "user",
    "truncation", "include", "stream_options",
})
ROLES = frozenset({"user", "assistant", "system", "developer"})


def _bad(field_name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{field_name}': {message}", param=field_name, code="invalid_value")


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """What a Responses call asks for; ``messages`` is this turn's input as chat messages."""

    model: str
    input_items: list[dict[str, Any]]  # as the client sent them, normalised to items
    messages: list[dict[str, Any]]  # this turn's input, as chat messages
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None

    def chat_body(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The chat completions body: instructions, the earlier turns, this turn's input."""
        messages = ([{"role": "system", "content": self.instructions}] if self.instructions else []) + history
        body: dict[str, Any] = {"model": self.model, "messages": messages + self.messages}
        if self.max_output_tokens is not None:
            body["max_tokens"] = self.max_output_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.text_format["type"] == "json_schema":
            schema = {k: self.text_format[k] for k in ("name", "schema", "strict", "description")
                      if k in self.text_format}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif self.text_format["type"] == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self.tools:
            body["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters",
                                                                                 "strict") if k in t}}
                             for t in self.tools]
            body["tool_choice"] = _chat_tool_choice(self.tool_choice)
            body["parallel_tool_calls"] = self.parallel_tool_calls
        if self.user is not None:
            body["user"] = self.user
        if self.stream:
            body["stream"] = True
        return body


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict):
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice


def _text_of(content: Any, where: str) -> str | list[dict[str, Any]]:
    """A message's content: a string, or input/output text parts (joined into chat text parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(where, "expected a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            raise InvalidRequest(f"Content part type {kind!r} is not supported", param=f"{where}[{index}]",
                                 code="unsupported_value")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def input_messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``input`` as (items, chat messages)."""
    if isinstance(value, str):
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}
        return [item], [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _bad("input", "expected a string or a non-empty array of input items")
    items: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(where, "expected an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise _bad(where + ".role", f"expected one of {sorted(ROLES)}")
            content = _text_of(item.get("content"), where + ".content")
            messages.append({"role": "system" if role == "developer" else role, "content": content})
            items.append({"type": "message", "role": role, "content": item.get("content")})
        elif kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                raise _bad(where, "a function_call item needs call_id, name and arguments")
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": item["call_id"], "type": "function",
                 "function": {"name": item["name"], "arguments": item["arguments"]}}]})
            items.append({k: item[k] for k in ("type", "call_id", "name", "arguments")})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                raise _bad(where, "a function_call_output item needs call_id and output (a string)")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
            items.append({k: item[k] for k in ("type", "call_id", "output")})
        else:
            raise InvalidRequest(f"Input items of type {kind!r} are not supported", param=where + ".type",
                                 code="unsupported_value")
    return items, messages


def _text_format(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "text"}
    if not isinstance(value, dict) or set(value) - {"format", "verbosity"}:
        raise _bad("text", "expected an object with 'format'")
    fmt = value.get("format", {"type": "text"})
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict) or not isinstance(fmt.get("name"), str):
            raise _bad("text.format", "a json_schema format needs 'name' and 'schema' (an object)")
        return dict(fmt)
    raise _bad("text.format.type", "expected 'text', 'json_object' or 'json_schema'")


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad("tools", "expected an array")
    for index, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise InvalidRequest(f"Tools of type {kind!r} are not supported (function tools are)",
                                 param=f"tools[{index}].type", code="unsupported_value")
        if not isinstance(tool.get("name"), str):
            raise _bad(f"tools[{index}].name", "expected a string")
    return list(value)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(name, f"expected a number between {low:g} and {high:g}")
    return float(value)


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise _bad(name, f"expected {getattr(kind, '__name__', 'a value')}")
    return value


def parse_responses(body: Any, *, max_tokens_limit: int) -> ResponsesRequest:
    """Check a Responses body; every refusal is a 400 naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("Expected a JSON object", code="invalid_body")
    for name in body:
        if name not in SUPPORTED:
            raise InvalidRequest(f"The field '{name}' is not supported by this server", param=name,
                                 code="unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
    if "input" not in body:
        raise InvalidRequest("'input' is required", param="input", code="missing_required_parameter")
    items, messages = input_messages(body["input"])
    max_output = _optional(body, "max_output_tokens", int)
    if max_output is not None and not 1 <= max_output <= max_tokens_limit:
        raise _bad("max_output_tokens", f"must be between 1 and {max_tokens_limit}")
    if body.get("truncation") not in (None, "disabled"):
        raise _bad("truncation", "only 'disabled' is supported")
    if body.get("include"):
        raise InvalidRequest("'include' is not supported by this server", param="include",
                             code="unsupported_parameter")
    metadata = _optional(body, "metadata", dict) or {}
    if len(metadata) > 16 or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _bad("metadata", "at most 16 string keys with string values")
    tools = _tools(body.get("tools"))
    choice = body.get("tool_choice", "auto")
    if not (choice in ("auto", "none", "required") or (
            isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str))):
        raise _bad("tool_choice", "expected 'auto', 'none', 'required' or {'type': 'function', 'name': ...}")
    return ResponsesRequest(
        model=model, input_items=items, messages=messages,
        instructions=_optional(body, "instructions", str),
        max_output_tokens=max_output,
        temperature=_number(body, "temperature", 0, 2), top_p=_number(body, "top_p", 0, 1),
        text_format=_text_format(body.get("text")), tools=tools, tool_choice=choice,
        parallel_tool_calls=_optional(body, "parallel_tool_calls", bool) is not False,
        stream=_optional(body, "stream", bool) is True,
        store=_optional(body, "store", bool) is not False,
        previous_response_id=_optional(body, "previous_response_id", str),
        metadata=metadata, user=_optional(body, "user", str),
    )
