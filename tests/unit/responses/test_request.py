"""A Responses body becomes a chat body, or a 400 naming the field it cannot honour."""

from __future__ import annotations

from typing import Any

import pytest

from inferlab.errors import InvalidRequest
from inferlab.responses.request import parse_responses


def parse(**body: Any) -> Any:
    return parse_responses({"model": "m", "input": "hi", **body}, max_tokens_limit=4096)


def test_text_input_instructions_and_sampling_become_the_chat_body() -> None:
    request = parse(instructions="Be brief.", max_output_tokens=32, temperature=0.5, top_p=0.9, user="u1")
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    assert request.chat_body(history) == {
        "model": "m", "max_tokens": 32, "temperature": 0.5, "top_p": 0.9, "user": "u1",
        "messages": [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "hi"}]}
    assert request.input_items == [{"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": "hi"}]}]


def test_message_items_function_calls_and_their_outputs() -> None:
    request = parse(input=[
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ])
    assert request.messages == [
        {"role": "system", "content": "rules"}, {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]


def test_json_schema_and_function_tools_map_to_the_chat_fields() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    tool = {"type": "function", "name": "add", "description": "adds", "parameters": schema}
    body = parse(text={"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
                 tools=[tool], tool_choice={"type": "function", "name": "add"}).chat_body([])
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": schema, "strict": True}}
    assert body["tools"] == [{"type": "function", "function": {"name": "add", "description": "adds",
                                                                "parameters": schema}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert parse(text={"format": {"type": "json_object"}}).chat_body([])["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(("body", "param"), [
    ({"reasoning": {"effort": "high"}}, "reasoning"),
    ({"background": True}, "background"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0]"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"max_output_tokens": 5000}, "max_output_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"text": {"format": {"type": "json_schema"}}}, "text.format"),
    ({"truncation": "auto"}, "truncation"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
    ({"input": []}, "input"),
    ({"model": 7}, "model"),
])
def test_what_cannot_be_honoured_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(**body)
    assert refused.value.param == param and refused.value.status == 400
