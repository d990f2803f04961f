"""Structured logging: one JSON object per line, with whatever ``extra=`` fields a call gives."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, TextIO

import orjson

from inferlab.config import LoggingSettings

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def timestamp(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds; the part up to the second formatted once a second."""
        second = int(created)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        )
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock} {record.levelname:<7} {record.name}: {record.getMessage()}"
        return f"{line} {extras}" if extras else line


def configure_logging(level: str, json_format: bool) -> logging.Logger:
    """Configure the ``inferlab`` logger tree (only it: libraries keep their own settings)."""
    logger = logging.getLogger("inferlab")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


class LineLog:
    """One kind of INFO line written often (the access log): where the logger's records would only
    reach one JSON stream handler, with no filter on the way, the line is made here directly — the
    same JSON object ``JsonFormatter`` makes, without a ``LogRecord``, a caller lookup and the
    handler's lock — and the lines of one event-loop turn are written together after the turn.
    Any other set-up (text format, more handlers, filters, a level above INFO) gets ordinary records."""

    def __init__(self, logger: logging.Logger, message: str) -> None:
        self._log = logger
        self._message = message
        self._pending: list[bytes] = []
        # where lines go, looked up again once a second (a logging set-up changed at run time is
        # followed within a second), not per line: the logger tree's handlers are walked each time
        self._target: tuple[TextIO, JsonFormatter] | None = None
        self._target_second = -1

    def _direct(self) -> tuple[TextIO, JsonFormatter] | None:
        logger = self._log
        if not logger.isEnabledFor(logging.INFO) or logger.filters:
            return None
        found: tuple[TextIO, JsonFormatter] | None = None
        source: logging.Logger | None = logger
        while source is not None:
            if source is not logger and source.filters:
                return None
            for handler in source.handlers:
                if (found is not None or type(handler) is not logging.StreamHandler or handler.filters
                        or handler.level > logging.INFO or not isinstance(handler.formatter, JsonFormatter)):
                    return None
                found = (handler.stream, handler.formatter)
            source = source.parent if source.propagate else None
        return found

    def write(self, fields: dict[str, Any]) -> None:
        """Log ``fields`` as one line: after this event-loop turn when there is a running loop."""
        now = time.time()
        second = int(now)
        if second != self._target_second:
            self._target, self._target_second = self._direct(), second
        direct = self._target
        if direct is None:
            if self._log.isEnabledFor(logging.INFO):
                self._log.info(self._message, extra=fields)
            return
        stream, formatter = direct
        entry = {"ts": formatter.timestamp(now), "level": "info", "logger": self._log.name,
                 "msg": self._message, **fields}
        self._pending.append(orjson.dumps(entry, default=str))
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._flush, stream)
            except RuntimeError:  # no loop: at once
                self._flush(stream)

    def _flush(self, stream: TextIO) -> None:
        lines, self._pending = self._pending, []
        text = b"\n".join(lines).decode() + "\n"
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: as logging.Handler.handleError would, go on
            pass


PROMPT_FIELDS = ("messages", "prompt", "input", "suffix")


class PromptLog:
    """``logging.log_prompts``: each inference request's prompt, cut at ``max_chars``, at INFO on
    ``inferlab.prompts`` with the request id. Off by default: prompts are the users' data."""

    def __init__(self, logger: logging.Logger, max_chars: int) -> None:
        self._log = logger
        self._max_chars = max_chars

    def record(self, request_id: str, model: str, body: dict[str, Any]) -> None:
        prompt = {field: body[field] for field in PROMPT_FIELDS if field in body}
        text = orjson.dumps(prompt).decode()
        self._log.info("prompt", extra={
            "request_id": request_id, "model": model, "prompt": text[: self._max_chars],
            "prompt_chars": len(text),
        })


def prompt_log(settings: LoggingSettings, logger: logging.Logger) -> PromptLog | None:
    """The prompt log when ``log_prompts`` is on, announced once with a warning; else None."""
    if not settings.log_prompts:
        return None
    logger.warning(
        "logging.log_prompts is on: every request's prompt is written to the log (first %d characters)",
        settings.prompt_max_chars,
    )
    return PromptLog(logger.getChild("prompts"), settings.prompt_max_chars)
