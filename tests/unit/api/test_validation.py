from __future__ import annotations

from typing import Any

import pytest

from inferlab.api.validation import RequestValidator
from inferlab.errors import InvalidRequest
from inferlab.types import RequestKind

VALIDATOR = RequestValidator(max_tokens=4096, max_n=8)
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_valid_requests_pass_with_unknown_fields_kept() -> None:
    body = {**CHAT, "max_tokens": 5, "temperature": 0.5, "stop": ["x"], "top_k": 40, "ignore_eos": True}
    assert VALIDATOR.validate(RequestKind.CHAT, body) is body
    VALIDATOR.validate(RequestKind.COMPLETION, {"model": "m", "prompt": [[1, 2], [3]], "suffix": "s"})
    VALIDATOR.validate(RequestKind.EMBEDDING, {"model": "m", "input": ["a", "b"], "encoding_format": "float"})


@pytest.mark.parametrize(
    "kind, body, param",
    [
        (RequestKind.CHAT, {"messages": CHAT["messages"]}, "model"),
        (RequestKind.CHAT, {"model": "m"}, "messages"),
        (RequestKind.CHAT, {**CHAT, "messages": []}, "messages"),
        (RequestKind.CHAT, {**CHAT, "messages": ["hi"]}, "messages[0]"),
        (RequestKind.CHAT, {**CHAT, "messages": [{"role": "boss", "content": "x"}]}, "messages[0].role"),
        (RequestKind.CHAT, {**CHAT, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (RequestKind.CHAT, {**CHAT, "max_tokens": 0}, "max_tokens"),
        (RequestKind.CHAT, {**CHAT, "max_tokens": 4097}, "max_tokens"),
        (RequestKind.CHAT, {**CHAT, "max_tokens": True}, "max_tokens"),
        (RequestKind.CHAT, {**CHAT, "max_tokens": 1.5}, "max_tokens"),
        (RequestKind.CHAT, {**CHAT, "n": 9}, "n"),
        (RequestKind.CHAT, {**CHAT, "temperature": 2.5}, "temperature"),
        (RequestKind.CHAT, {**CHAT, "temperature": "0"}, "temperature"),
        (RequestKind.CHAT, {**CHAT, "stream": "yes"}, "stream"),
        (RequestKind.CHAT, {**CHAT, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        (RequestKind.CHAT, {**CHAT, "stop": [1]}, "stop"),
        (RequestKind.CHAT, {**CHAT, "model": 3}, "model"),
        (RequestKind.COMPLETION, {"model": "m", "prompt": 3}, "prompt"),
        (RequestKind.COMPLETION, {"model": "m", "prompt": [1, -2]}, "prompt"),
        (RequestKind.EMBEDDING, {"model": "m", "input": ""}, "input"),
        (RequestKind.EMBEDDING, {"model": "m", "input": "a", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_bad_fields_are_named(kind: RequestKind, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        VALIDATOR.validate(kind, body)
    assert raised.value.param == param and raised.value.status == 400


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        VALIDATOR.validate(RequestKind.CHAT, [CHAT])
