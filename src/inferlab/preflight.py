"""What ``serve`` needs beyond valid settings: a model, and for each model InferLab runs itself an
engine binary and a model file. ``serve`` and ``inferlab config check`` both call ``preflight``,
so the check fails exactly when ``serve`` would refuse to start."""

from __future__ import annotations

import json

from inferlab.config import ConfigError, Settings
from inferlab.coordinator.locate import EngineUnavailable, llama_engine_command


def preflight(settings: Settings) -> None:
    """Raise ``ConfigError`` listing everything ``serve`` could not start with."""
    problems: list[str] = []
    if not settings.models:
        problems.append("models: no model is configured (see inferlab.example.yaml)")
    for index, model in enumerate(settings.models):
        if model.backend == "llamacpp" and not model.url and not model.urls:  # managed: InferLab runs it
            try:
                llama_engine_command(model, settings.engines, 0)
            except EngineUnavailable as exc:
                problems.append(f"models.{index} ({model.name}): {exc}")
    jwks_file = settings.auth.jwt.jwks_file
    if settings.features.auth and settings.auth.jwt.issuer and jwks_file is not None:
        try:
            json.loads(jwks_file.expanduser().read_text("utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"auth.jwt.jwks_file: cannot read a JWKS document from {jwks_file}: {exc}")
    if problems:
        raise ConfigError("\n  ".join(["cannot serve this configuration:", *problems]))
