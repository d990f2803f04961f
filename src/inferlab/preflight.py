"""What ``serve`` needs beyond valid settings: a model, and for each model InferLab runs itself an
engine binary and a model file. ``serve`` and ``inferlab config check`` both call ``preflight``,
so the check fails exactly when ``serve`` would refuse to start."""

from __future__ import annotations

import importlib.util
import json

from inferlab.config import EMBEDDED_MODEL, ConfigError, ModelConfig, Settings
from inferlab.coordinator.locate import (
    EngineUnavailable,
    find_rpc_programs,
    llama_engine_command,
    resolve_model_path,
)


def _check_group(model: ModelConfig, settings: Settings) -> None:
    """A model served by engine groups needs the RPC build, its model file, and Ray when placed on Ray."""
    find_rpc_programs(settings.engines)
    resolve_model_path(model.path or EMBEDDED_MODEL)
    if model.distributed is not None and model.distributed.provider == "ray" and importlib.util.find_spec("ray") is None:
        raise EngineUnavailable("distributed.provider is ray but ray is not installed: pip install 'inferlab[ray]'")


def preflight(settings: Settings) -> None:
    """Raise ``ConfigError`` listing everything ``serve`` could not start with."""
    problems: list[str] = []
    if not settings.models:
        problems.append("models: no model is configured (see inferlab.example.yaml)")
    for index, model in enumerate(settings.models):
        if model.backend == "llamacpp" and not model.url and not model.urls:  # managed: InferLab runs it
            try:
                if model.distributed is not None:
                    _check_group(model, settings)
                else:
                    llama_engine_command(model, settings.engines, 0)
            except EngineUnavailable as exc:
                problems.append(f"models.{index} ({model.name}): {exc}")
    jwks_file = settings.auth.jwt.jwks_file
    if settings.features.auth and settings.auth.jwt.issuer and jwks_file is not None:
        try:
            json.loads(jwks_file.expanduser().read_text("utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"auth.jwt.jwks_file: cannot read a JWKS document from {jwks_file}: {exc}")
    from inferlab.workers.plan import multi_worker_problems

    problems += [f"server.workers {settings.server.workers}: {problem}" for problem in multi_worker_problems(settings)]
    if problems:
        raise ConfigError("\n  ".join(["cannot serve this configuration:", *problems]))
