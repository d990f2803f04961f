"""Structured logging: one JSON object per line, with whatever ``extra=`` fields a call gives."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from inferlab.config import LoggingSettings

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        """ISO 8601 UTC with milliseconds; the part up to the second formatted once a second."""
        second = int(record.created)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
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
