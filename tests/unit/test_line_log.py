"""The access log's direct line: the same JSON object as a record through ``JsonFormatter``, the
lines of one loop turn in one write, and ordinary records whenever anything else is configured."""

from __future__ import annotations

import asyncio
import io
import logging

import orjson
import pytest

from inferlab.logs import JsonFormatter, LineLog, TextFormatter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def logger() -> logging.Logger:
    """A logger of its own, outside logging's registry (pytest attaches its capture handlers there)."""
    found = logging.Logger("test-line-log", logging.INFO)  # noqa: LOG001
    found.propagate = False
    return found


def json_handler(stream: io.StringIO) -> logging.StreamHandler[io.StringIO]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_direct_line_is_the_formatters_object_and_one_loop_turn_is_one_write(logger: logging.Logger) -> None:
    stream = CountingStream()
    logger.addHandler(json_handler(stream))
    access = LineLog(logger, "request")
    access.write({"request_id": "a", "status": 200, "ms": 1.5})
    access.write({"request_id": "b", "status": 404, "ms": 0.2})
    assert stream.getvalue() == ""  # after the turn, once the response is on its way
    await asyncio.sleep(0)
    logger.info("request", extra={"request_id": "c", "status": 200, "ms": 3.0})  # the formatter's own
    written = lines(stream)
    assert [line.pop("ts") is not None for line in written] == [True] * 3
    assert written == [
        {"level": "info", "logger": logger.name, "msg": "request", "request_id": "a", "status": 200, "ms": 1.5},
        {"level": "info", "logger": logger.name, "msg": "request", "request_id": "b", "status": 404, "ms": 0.2},
        {"level": "info", "logger": logger.name, "msg": "request", "request_id": "c", "status": 200, "ms": 3.0},
    ]
    assert stream.writes == 2  # a and b together; c through the handler


def test_the_timestamp_is_iso_utc_with_milliseconds() -> None:
    assert JsonFormatter().timestamp(1_764_806_400.25) == "2025-12-04T00:00:00.250Z"


@pytest.mark.parametrize("setup", ["text", "filter", "two-handlers", "warning-level"])
async def test_anything_else_configured_gets_ordinary_records(logger: logging.Logger, setup: str) -> None:
    stream, seen = io.StringIO(), io.StringIO()
    handler = json_handler(stream)
    logger.addHandler(handler)
    if setup == "text":
        handler.setFormatter(TextFormatter())
    elif setup == "filter":
        def mark(record: logging.LogRecord) -> bool:
            record.filtered = True
            return True

        handler.addFilter(mark)
    elif setup == "two-handlers":
        logger.addHandler(json_handler(seen))
    else:
        logger.setLevel(logging.WARNING)
    LineLog(logger, "request").write({"request_id": "a"})
    written = stream.getvalue()  # at once: a record, not a deferred line
    if setup == "warning-level":
        assert written == ""
    elif setup == "text":
        assert "request" in written and "request_id=a" in written
    else:
        assert lines(stream)[0]["request_id"] == "a"
        if setup == "filter":
            assert lines(stream)[0]["filtered"] is True
        else:
            assert lines(seen)[0]["request_id"] == "a"


def test_without_a_running_loop_the_line_is_written_at_once(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(json_handler(stream))
    LineLog(logger, "request").write({"request_id": "a"})
    assert lines(stream)[0]["request_id"] == "a"


async def test_a_changed_setup_is_followed_within_a_second(logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    logger.addHandler(handler)
    access = LineLog(logger, "request")
    access.write({"request_id": "a"})
    await asyncio.sleep(0)
    handler.setFormatter(TextFormatter())  # where lines go is looked up once a second, not per line
    await asyncio.sleep(1.05)
    access.write({"request_id": "b"})
    assert lines(io.StringIO(stream.getvalue().splitlines()[0]))[0]["request_id"] == "a"
    assert "request_id=b" in stream.getvalue()  # at once, through the text formatter
