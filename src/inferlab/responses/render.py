"""Chat completions rendered in the Responses API's shape: the response object, its output
items, its usage, and the assistant's turn as it goes into the next call's history."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from inferlab.responses.request import ResponsesRequest
from inferlab.types import Usage


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def usage_of(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


@dataclass(slots=True)
class Turn:
    """What the model said: its text, its function calls, and why it stopped."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # chat shape: id, function.name/arguments
    finish_reason: str | None = None
    message_id: str = field(default_factory=lambda: new_id("msg"))

    @classmethod
    def of_chat(cls, body: dict[str, Any]) -> Turn:
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        return cls(text=message.get("content") or "", tool_calls=list(message.get("tool_calls") or []),
                   finish_reason=choices[0].get("finish_reason"))

    def message_item(self, status: str = "completed") -> dict[str, Any]:
        return {"id": self.message_id, "type": "message", "role": "assistant", "status": status,
                "content": [output_text(self.text)] if status == "completed" else []}

    def call_items(self) -> list[dict[str, Any]]:
        return [{"id": "fc_" + str(call.get("id") or index), "type": "function_call", "status": "completed",
                 "call_id": str(call.get("id") or f"call_{index}"), "name": call["function"]["name"],
                 "arguments": call["function"].get("arguments") or ""}
                for index, call in enumerate(self.tool_calls)]

    def output(self) -> list[dict[str, Any]]:
        items = [self.message_item()] if self.text or not self.tool_calls else []
        return items + self.call_items()

    def history(self) -> dict[str, Any]:
        """The assistant's message for the next turn's chat history."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [{"id": item["call_id"], "type": "function",
                                      "function": {"name": item["name"], "arguments": item["arguments"]}}
                                     for item in self.call_items()]
        elif message["content"] is None:
            message["content"] = ""
        return message


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(response_id: str, request: ResponsesRequest, created_at: int, *, status: str,
                    turn: Turn | None = None, usage: Usage | None = None) -> dict[str, Any]:
    """The ``response`` object, in progress (no turn yet) or done."""
    incomplete = None
    if turn is not None and turn.finish_reason == "length":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": status, "error": None,
        "incomplete_details": incomplete, "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens, "model": request.model,
        "output": turn.output() if turn is not None else [], "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id, "reasoning": {"effort": None, "summary": None},
        "store": request.store, "temperature": request.temperature, "top_p": request.top_p,
        "text": {"format": request.text_format}, "tool_choice": request.tool_choice, "tools": request.tools,
        "truncation": "disabled", "usage": usage_of(usage), "user": request.user, "metadata": request.metadata,
    }
