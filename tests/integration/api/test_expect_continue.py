"""``Expect: 100-continue`` on the real server and socket: a body is invited only when its route
would take it; a larger one is refused (413, OpenAI-shaped) before the client sends a byte of it,
and the connection closes; a route's own limit counts (uploads take more than chat)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from inferlab.config import Settings

from .harness import close, connect, openai_error, read_response, running_gateway, seconds_until_closed

FIVE_MIB = 5 * 1024 * 1024  # over the 4 MiB default for JSON bodies, under the 100 MiB for uploads


def settings() -> Settings:
    return Settings(features={"metrics": False})


def asking(path: str, length: int, *, expect: str = "100-continue", content_type: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: g\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            f"Expect: {expect}\r\n\r\n").encode()


async def test_a_body_larger_than_the_route_takes_is_refused_before_it_is_sent() -> None:
    async with running_gateway(settings()) as port:
        reader, writer = await connect(port)
        writer.write(asking("/v1/chat/completions", FIVE_MIB))  # and not a byte of the body
        status, headers, body = await asyncio.wait_for(read_response(reader), 5)
        assert await seconds_until_closed(reader, limit=5.0) < 5.0  # no body awaited after the refusal
        await close(writer)
    assert status == 413, body  # the first answer: no 100 Continue before it
    assert openai_error(body)["type"] == "invalid_request_error"
    assert headers.get("x-request-id")  # through the middleware, like every other refusal


async def test_a_body_the_route_takes_is_invited_then_read() -> None:
    body = b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}'
    async with running_gateway(settings()) as port:
        reader, writer = await connect(port)
        writer.write(asking("/v1/chat/completions", len(body)))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        status, _, answer = await asyncio.wait_for(read_response(reader), 5)
        await close(writer)
    assert status == 404 and openai_error(answer)["code"] == "model_not_found", answer  # the body was read


async def test_an_upload_is_invited_up_to_the_files_limit_not_the_json_one() -> None:
    async with running_gateway(settings()) as port:
        reader, writer = await connect(port)
        writer.write(asking("/v1/files", FIVE_MIB, content_type="multipart/form-data; boundary=b"))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        await close(writer)
        reader, writer = await connect(port)
        writer.write(asking("/v1/files", 200 * 1024 * 1024, content_type="multipart/form-data; boundary=b"))
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        await close(writer)
        assert status == 413 and openai_error(body)["code"] == "payload_too_large", body
        reader, writer = await connect(port)  # the same upload declared without asking first
        writer.write(asking("/v1/files", 200 * 1024 * 1024, content_type="multipart/form-data; boundary=b")
                     .replace(b"Expect: 100-continue\r\n", b""))
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        await close(writer)
    assert status == 413 and openai_error(body)["param"] == "file", body  # refused by its length, unread


async def test_a_route_that_reads_a_form_is_not_left_waiting_for_a_body_it_did_not_invite(tmp_path: Path) -> None:
    """The sign-in form reads its body with aiohttp's ``post()``, not the gateway's body reader: the
    refusal of a body that was not invited comes before any handler, so none waits for it."""
    settings = Settings.model_validate({"features": {"metrics": False, "auth": True}, "data_dir": str(tmp_path)})
    async with running_gateway(settings) as port:
        reader, writer = await connect(port)
        writer.write(asking("/ui/login", FIVE_MIB, content_type="application/x-www-form-urlencoded"))
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        await close(writer)
    assert status == 413 and openai_error(body)["code"] == "payload_too_large", body


async def test_an_unknown_expectation_is_an_openai_417() -> None:
    async with running_gateway(settings()) as port:
        reader, writer = await connect(port)
        writer.write(asking("/v1/chat/completions", 10, expect="something-else"))
        status, headers, body = await asyncio.wait_for(read_response(reader), 5)
        await close(writer)
    assert status == 417 and headers["content-type"].startswith("application/json")
    assert openai_error(body)["code"] == "expectation_failed"
