"""Requests aiohttp cannot parse, on the real server (the runner ``inferlab serve`` uses, on a real
socket): the answer is OpenAI-shaped JSON like every other error and never echoes the request's
bytes; the log gets one line, no traceback and none of the offending line."""

from __future__ import annotations

import logging

import pytest

from inferlab.config import Settings

from .harness import close, connect, openai_error, read_response, running_gateway, seconds_until_closed

SECRET = "il-secretkeyid-" + "s" * 40


def settings() -> Settings:
    return Settings(features={"metrics": False, "planning_api": False})


@pytest.mark.parametrize(("what", "data", "code"), [
    ("a request line past the limit", b"GET /v1/models?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: g\r\n\r\n",
     "request_head_too_large"),
    ("a header past the limit", b"GET /v1/models HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer " + SECRET.encode()
     + b"x" * 20_000 + b"\r\n\r\n", "request_head_too_large"),
    ("not HTTP", b"HELLO THERE\r\n\r\n", "invalid_http"),
    ("a bad header line", b"GET /v1/models HTTP/1.1\r\nHost: g\r\nno colon here\r\n\r\n", "invalid_http"),
    ("a bad chunk size", (b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\n"), "invalid_http"),
])
async def test_an_unparsable_request_gets_an_openai_error_that_echoes_nothing(
        what: str, data: bytes, code: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_gateway(settings()) as port:
        reader, writer = await connect(port)
        writer.write(data)
        status, headers, body = await read_response(reader)
        assert await seconds_until_closed(reader, limit=5.0) < 5.0  # and the connection is closed
        await close(writer)
    assert status == 400, (what, body)
    assert headers["content-type"].startswith("application/json")
    error = openai_error(body)
    assert error["type"] == "invalid_request_error" and error["code"] == code, error
    assert b"aaaa" not in body and b"secret" not in body and b"HELLO" not in body
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert SECRET not in logged and "secretkeyid" not in logged
    assert not any(record.exc_info for record in caplog.records if record.name.startswith("aiohttp"))
