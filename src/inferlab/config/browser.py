"""``browser:``: the browser hybrid (``features.browser``) — the models a browser may run itself
(served to it as GGUF files), the tiers that may fall back to the server, and the checks on the
usage a browser reports back.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from inferlab.config.base import StrictModel

EMBEDDED = "embedded:smollm2"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BrowserModelSettings(StrictModel):
    name: str = Field("smollm2-135m", description="the model's name in the catalogue and in usage records")
    path: str = Field(EMBEDDED, description="the GGUF file served to browsers (a path, or embedded:smollm2)")
    sha256: str | None = Field(None, description="the file's SHA-256 (hex); default: computed at start")
    server_model: str | None = Field(
        None, description="the configured model that answers when the browser cannot; default: the same name")
    min_memory_gb: float = Field(1.0, gt=0, description="the least navigator.deviceMemory (GiB) to run it locally")
    expected_tokens_per_s: float = Field(
        15.0, gt=0, description="the decode speed a browser on a 2-core CPU reaches (wllama, WASM SIMD)")
    max_tokens_per_s: float = Field(
        2000.0, gt=0, description="plausibility: a reported generation faster than this is refused")
    context_size: int = Field(2048, ge=128, description="the context the browser loads the model with")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("a browser model name is letters, digits, '.', '_' and '-' (at most 64)")
        return name

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value.lower()):
            raise ValueError("sha256 is 64 hex digits")
        return value.lower() if value is not None else None


class BrowserSettings(StrictModel):
    models: list[BrowserModelSettings] = Field(
        default_factory=lambda: [BrowserModelSettings()], description="the browser model catalogue")
    server_fallback_tiers: list[str] | None = Field(
        None, description="tiers whose browsers may fall back to the server (requests marked x-inferlab-fallback); "
                          "default: every tier")
    cache_max_age_s: int = Field(86400, ge=0, description="Cache-Control max-age of the model files and the client")
    client_dir: Path | None = Field(
        None, description="the built browser client (clients/browser/dist); default: the source tree's")
    reports_per_minute: float = Field(120.0, gt=0, description="usage reports a key may send per minute")
    reports_burst: int = Field(30, ge=1, description="...and at once")
    max_report_age_s: float = Field(86400.0, gt=0, description="a report older than this is refused")
    max_clock_skew_s: float = Field(300.0, ge=0, description="a report this far in the future is still accepted")
    remembered_reports: int = Field(
        100_000, ge=100, description="report ids kept in memory to answer a repeated report as a duplicate")

    @model_validator(mode="after")
    def _unique(self) -> BrowserSettings:
        names = [model.name for model in self.models]
        if len(set(names)) != len(names):
            raise ValueError("browser.models: a name is listed twice")
        return self
