"""A batch's input file is checked whole when the batch is created: every refusal names its line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferlab.batches.lines import caller_of, caller_record, parse_lines
from inferlab.errors import InvalidRequest
from inferlab.types import Caller, RequestKind

URL = "/v1/chat/completions"


def line(custom_id: str = "a", **overrides: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": URL,
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, **overrides}


def content(*lines: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(item) for item in lines).encode() + b"\n\n"


def test_lines_are_read_in_order_with_blank_lines_skipped() -> None:
    checked: list[RequestKind] = []
    parsed = parse_lines(content(line("a"), line("b")), URL, lambda kind, body: checked.append(kind) or body)
    assert [(p.line, p.custom_id) for p in parsed] == [(0, "a"), (1, "b")]
    assert checked == [RequestKind.CHAT, RequestKind.CHAT]


@pytest.mark.parametrize(("lines", "message"), [
    ((line("a"), line("a")), "Line 2 of the input file: 'custom_id' 'a' is not unique"),
    ((line("a", url="/v1/embeddings"),), "Line 1 of the input file: 'url' must be the batch's endpoint"),
    ((line("a", method="GET"),), "Line 1 of the input file: 'method' must be POST"),
    ((line("a", body={"model": "m", "messages": [], "stream": True}),), "'body.stream' is not allowed"),
    ((line(""),), "'custom_id' must be a string"),
])
def test_bad_lines_are_refused_naming_them(lines: tuple[dict[str, Any], ...], message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_lines(content(*lines), URL)
    assert message in refused.value.message and refused.value.param == "input_file_id"


def test_a_body_the_route_would_refuse_is_refused_with_its_reason() -> None:
    def validate(kind: RequestKind, body: Any) -> dict[str, Any]:
        raise InvalidRequest("Invalid value for 'max_tokens'", param="max_tokens")

    with pytest.raises(InvalidRequest) as refused:
        parse_lines(content(line("a")), URL, validate)
    assert refused.value.message == "Line 1 of the input file: Invalid value for 'max_tokens'"


def test_endpoint_empty_file_and_the_size_bound() -> None:
    with pytest.raises(InvalidRequest, match="Unsupported endpoint"):
        parse_lines(content(line()), "/v1/responses")
    with pytest.raises(InvalidRequest, match="no requests"):
        parse_lines(b"\n\n", URL)
    with pytest.raises(InvalidRequest, match="at most 1 requests"):
        parse_lines(content(line("a"), line("b")), URL, max_lines=1)


def test_the_caller_is_kept_as_it_was() -> None:
    caller = Caller(tenant_id="t", user_id="u", key_id="k", role="member", address="1.2.3.4",
                    models=frozenset({"m"}))
    assert caller_of(json.loads(json.dumps(caller_record(caller)))) == caller
