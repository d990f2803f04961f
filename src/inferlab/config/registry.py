"""``registry:``: the model registry (``features.registry``): versions and aliases seeded from
this file, how fast every gateway sees a change, and how experiments are judged."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from inferlab.config.base import StrictModel

ExperimentUnit = Literal["tenant", "key", "user", "session"]


class VersionSeed(StrictModel):
    """One immutable version written into the registry at start-up (kept if already there)."""

    model: str = Field(min_length=1, max_length=200, pattern=r"^[^@\s]+$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    spec: dict[str, Any] = Field(description="the serving fields of a `models:` entry (backend, url, path, "
                                             "engine_args, ...), without its name")
    digest: str | None = Field(None, description="the artefact's sha256 (default: the GGUF file's, when a path)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="default sampling parameters")


class JudgeSettings(StrictModel):
    """How running experiments are judged (every gateway evaluates; the store decides once)."""

    interval_s: float = Field(60.0, gt=0, description="one evaluation interval")
    alpha: float = Field(0.05, gt=0, lt=1, description="the always-valid test's error bound (mSPRT)")
    mixture_sd: float = Field(0.05, gt=0, description="mSPRT: the spread of plausible error-rate differences")
    min_requests: int = Field(30, ge=1, description="per variant, before any judgement")
    max_error_rate: float = Field(0.05, gt=0, le=1, description="guardrail: a variant above it is rolled back")
    min_errors: int = Field(3, ge=1, description="guardrail: errors seen before the error-rate guardrail trips")
    max_ttft_ratio: float = Field(1.5, gt=1, description="guardrail: candidate mean TTFT over control's...")
    ttft_slack_s: float = Field(0.05, ge=0, description="...plus this (a few ms of noise is no regression)")
    promote_margin: float = Field(0.01, gt=0, description="promote once the error-rate difference's upper "
                                                          "confidence bound is below this")
    promote_min_requests: int = Field(500, ge=1, description="per variant, before promotion")
    drain_s: float = Field(30.0, ge=0, description="after a flip: how long requests in flight may finish")


class RegistrySettings(StrictModel):
    poll_interval_s: float = Field(1.0, gt=0, description="how often each gateway reads the store's change counter")
    start_timeout_s: float = Field(120.0, gt=0, description="a new version's engines must be ready within this "
                                                            "before any alias or experiment sends it traffic")
    unit: ExperimentUnit = Field("tenant", description="experiments' default assignment unit")
    versions: list[VersionSeed] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict, description='"model@alias": "version"')
    fallbacks: dict[str, list[str]] = Field(default_factory=dict,
                                            description="model: models tried when its pool has nothing healthy")
    flush_interval_s: float = Field(5.0, gt=0, description="per-variant statistics written to the store")
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    store_dir: str | None = Field(None, description="the local model store (default: data_dir/models)")
    convert_python: str | None = Field(None, description="`inferlab models convert`: a Python with torch (a venv "
                                                         "with inferlab[convert]); default: this one, if it has torch")

    @field_validator("aliases")
    @classmethod
    def _alias_names(cls, aliases: dict[str, str]) -> dict[str, str]:
        for ref in aliases:
            model, at, alias = ref.partition("@")
            if not model or not at or not alias:
                raise ValueError(f"alias {ref!r} must be spelled model@alias")
        return aliases
