"""The SSE and NDJSON readers over a real aiohttp connection: what passes, what is an error."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from inferlab.backends.http import ndjson_lines, sse_data_lines
from inferlab.errors import InferLabError

LIMIT = 1024


async def read_sse(url: str) -> list[bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return [data async for data in sse_data_lines(response, "e", LIMIT)]


@pytest.mark.parametrize(("body", "payloads"), [
    (b'data: {"a":1}\n\ndata: [DONE]\n\n', [b'{"a":1}', b"[DONE]"]),
    (b'data:{"a":1}\r\n\r\n', [b'{"a":1}']),  # no space after the colon, CRLF lines
    (b':\n\n: ping\n\ndata: {"a":1}\n\n', [b'{"a":1}']),  # comments: llama-server's keep-alive
    (b'id: 3\nretry: 100\ndata: {"a":1}\n\n', [b'{"a":1}']),
    (b'event: message\ndata: {"a":1}\n\n', [b'{"a":1}']),  # the default event type, named
    (b'event: progress\n\ndata: {"a":1}\n\n', [b'{"a":1}']),  # a named event without data: nothing
    (b'data: ' + b"x" * (LIMIT - 7) + b"\n\n", [b"x" * (LIMIT - 7)]),  # exactly the limit, newline included
])
async def test_well_formed_sse(serve_bytes: Any, body: bytes, payloads: list[bytes]) -> None:
    assert await read_sse(serve_bytes(body)) == payloads


@pytest.mark.parametrize(("body", "code", "status"), [
    (b'event: error\ndata: {"error": {"message": "boom"}}\n\n', "engine_error", 502),
    (b'event: error\ndata: {"error": {"message": "bad", "code": 400}}\n\n', "engine_rejected", 400),
    (b"event: error\n\n", "engine_error", 502),
    (b'event: progress\ndata: {"a":1}\n\n', "malformed_stream", 502),
    (b'data: {"a":1}\n\nerror: {"message": "boom"}\n\n', "malformed_stream", 502),
    (b'data: {"a":1}\n\nhello\n\n', "malformed_stream", 502),
    (b'data: ' + b"x" * (LIMIT - 6) + b"\n\n", "stream_line_too_long", 502),
    (b'data: {"a":1}\n\ndata: {"a":', "incomplete_stream", 502),
])
async def test_malformed_sse(serve_bytes: Any, body: bytes, code: str, status: int) -> None:
    with pytest.raises(InferLabError) as raised:
        await read_sse(serve_bytes(body))
    assert (raised.value.code, raised.value.status) == (code, status)
    # a 5xx-class failure never carries the engine's text; a 4xx verdict on the request carries its
    # reason, redacted (backends/engine_errors.py), so the client can fix the request
    assert "boom" not in raised.value.message
    assert ("bad" in raised.value.message) == (status == 400)


async def read_ndjson(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return [event async for event in ndjson_lines(response, "e", LIMIT)]


async def test_ndjson(serve_bytes: Any) -> None:
    assert await read_ndjson(serve_bytes(b'{"a":1}\n\n{"b":2}\n')) == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(("body", "code"), [
    (b'{"a":1}\n{"b":', "incomplete_stream"),
    (b'{"a":1}\n{"b":\n', "malformed_stream"),
    (b"[1, 2]\n", "malformed_stream"),
    (b'{"a":"' + b"x" * LIMIT + b'"}\n', "stream_line_too_long"),
])
async def test_malformed_ndjson(serve_bytes: Any, body: bytes, code: str) -> None:
    with pytest.raises(InferLabError) as raised:
        await read_ndjson(serve_bytes(body))
    assert raised.value.code == code
