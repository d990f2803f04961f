"""``logging:``: level, format, and whether prompts are logged (named ``logs`` so that nothing here
reads as the standard library's ``logging``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inferlab.config.base import StrictModel


class LoggingSettings(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = True
    log_prompts: bool = Field(False, description="log each request's prompt (INFO, with its request id)")
    prompt_max_chars: int = Field(2000, ge=0, description="log_prompts: characters of a prompt logged at most")
