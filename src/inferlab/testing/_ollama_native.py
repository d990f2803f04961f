"""What the simulated Ollama checks in a request and how it shapes the reply.

Checks follow Ollama's own request types (``api/types.go``): a message's ``content`` is a string,
``images`` a list of base64 strings, a tool call's ``arguments`` a JSON object, ``format``
``"json"`` or a JSON schema object, ``tools`` function tools. A bad request is a 400, as in Ollama.

Replies, deterministic:
  - ``tools`` given and the last message from the user: one call per declared tool (no ``id``, as
    Ollama before v0.12 and its documentation examples), arguments built from each tool's
    ``parameters`` schema; after a ``tool`` message the model answers in text;
  - ``format``: the text is a JSON document that satisfies it (``{"text": ...}`` for ``"json"``);
  - ``logprobs``: every event carries ``logprobs`` (``top_logprobs`` alternatives each);
  - ``think``: the message carries ``thinking``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferlab.testing._text import SIM_TOKENS, generated_text, token_text

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_THINK = frozenset({"low", "medium", "high", "max"})


class NativeRequestError(ValueError):
    """A request real Ollama would refuse with a 400."""


def _check_images(where: str, images: Any) -> int:
    if images is None:
        return 0
    if not isinstance(images, list):
        raise NativeRequestError(
            f"json: cannot unmarshal {type(images).__name__} into Go struct field {where} of type []api.ImageData"
        )
    for image in images:
        try:
            base64.b64decode(image if isinstance(image, str) else b"?", validate=True)
        except (binascii.Error, ValueError):
            raise NativeRequestError(f"illegal base64 data in {where}") from None
    return len(images)


def _check_tool_calls(calls: Any) -> None:
    if not isinstance(calls, list):
        raise NativeRequestError("json: cannot unmarshal into Go struct field Message.messages.tool_calls of type []api.ToolCall")
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise NativeRequestError("a tool call needs function.name")
        if not isinstance(function.get("arguments", {}), dict):
            raise NativeRequestError("json: cannot unmarshal string into Go struct field ToolCallFunction.arguments")


def check_messages(messages: list[Any]) -> int:
    """Check chat messages as Ollama parses them; answer the number of images they carry."""
    images = 0
    for message in messages:
        if not isinstance(message, dict):
            raise NativeRequestError("json: cannot unmarshal into Go struct field ChatRequest.messages of type api.Message")
        if message.get("role") not in _ROLES:
            raise NativeRequestError(f"invalid role {message.get('role')!r}")
        content = message.get("content", "")
        if not isinstance(content, str):
            raise NativeRequestError(
                f"json: cannot unmarshal {type(content).__name__} into Go struct field Message.messages.content of type string"
            )
        images += _check_images("Message.messages.images", message.get("images"))
        if "tool_calls" in message:
            _check_tool_calls(message["tool_calls"])
    return images


def check_options(body: dict[str, Any], *, chat: bool) -> int:
    """Check the request's other native fields; answer the number of top-level images."""
    fmt = body.get("format")
    if fmt is not None and fmt not in ("", "json") and not isinstance(fmt, dict):
        raise NativeRequestError(f"invalid format: {fmt!r}; expected \"json\" or a JSON schema")
    tools = body.get("tools")
    if tools is not None:
        if not chat or not isinstance(tools, list):
            raise NativeRequestError("tools must be a list of function tools (/api/chat only)")
        for tool in tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
                raise NativeRequestError("each tool needs type \"function\" and function.name")
    think = body.get("think")
    if think is not None and not isinstance(think, bool) and think not in _THINK:
        raise NativeRequestError(f"invalid think value: {think!r}")
    if not isinstance(body.get("logprobs", False), bool):
        raise NativeRequestError("logprobs must be a boolean")
    top = body.get("top_logprobs", 0)
    if not isinstance(top, int) or not 0 <= top <= 20:
        raise NativeRequestError("top_logprobs must be between 0 and 20")
    return 0 if chat else _check_images("GenerateRequest.images", body.get("images"))


def instance(schema: Any, depth: int = 0) -> Any:
    """A small JSON value that satisfies a (simple) JSON schema."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: instance(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [instance(schema.get("items"), depth + 1)] * int(schema.get("minItems") or 0)
    return {"string": "simulated", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


@dataclass(frozen=True, slots=True)
class ReplyShape:
    """What a reply looks like, beyond its length."""

    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    document: str | None = None  # the whole text when a format constrains it
    logprobs: bool = False
    top_logprobs: int = 0
    thinking: str | None = None

    @classmethod
    def of(cls, body: dict[str, Any], *, chat: bool) -> ReplyShape:
        calls: list[dict[str, Any]] = []
        messages = body.get("messages") or []
        if chat and body.get("tools") and messages and messages[-1].get("role") == "user":
            calls = [
                {"function": {"index": i, "name": tool["function"]["name"],
                              "arguments": instance(tool["function"].get("parameters")) or {}}}
                for i, tool in enumerate(body["tools"])
            ]
        fmt = body.get("format")
        document = None
        if fmt == "json":
            document = orjson.dumps({"text": generated_text(3).strip()}).decode()
        elif isinstance(fmt, dict):
            document = orjson.dumps(instance(fmt)).decode()
        think = body.get("think")
        return cls(calls, document, bool(body.get("logprobs")), int(body.get("top_logprobs") or 0),
                   "simulated thinking" if think not in (None, False) else None)

    def pieces(self, count: int) -> list[str]:
        """The reply's text, one piece per generated token."""
        if self.tool_calls:
            return []
        if self.document is None:
            return [token_text(i) for i in range(count)]
        size = -(-len(self.document) // max(1, count))
        return [self.document[i:i + size] for i in range(0, len(self.document), size)]

    def logprob_entries(self, pieces: list[str], start: int) -> list[dict[str, Any]]:
        entries = []
        for offset, piece in enumerate(pieces):
            index = start + offset
            logprob = -0.25 - 0.01 * (index % 10)
            top = [{"token": piece, "logprob": logprob, "bytes": list(piece.encode())}]
            top += [{"token": SIM_TOKENS[(index + k) % len(SIM_TOKENS)], "logprob": logprob - k}
                    for k in range(1, self.top_logprobs)]
            entries.append({"token": piece, "logprob": logprob, "bytes": list(piece.encode()),
                            "top_logprobs": top[:self.top_logprobs]})
        return entries
