"""Typed settings: one YAML file, a shipped profile under it, ``INFERLAB_*`` environment over it.

Precedence, highest first: explicit overrides (CLI flags) > environment (``INFERLAB_SERVER__PORT``)
> the config file > the profile (``laptop`` by default) > defaults below.
Settings are validated once, at start-up, and passed down as an object; nothing reads
``os.environ`` past this module.
"""

from __future__ import annotations

import ipaddress
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

EMBEDDED_MODEL = "embedded:smollm2"
PROFILES = ("laptop", "production")


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="413 above this")
    drain_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: how long in-flight work may finish")
    insecure_allow_remote: bool = False
    max_tokens_limit: int = Field(131072, ge=1, description="upper bound accepted for max_tokens")
    max_n: int = Field(16, ge=1, description="upper bound accepted for n")


class FeatureFlags(_Strict):
    metrics: bool = True
    planning_api: bool = False


class UpstreamSettings(_Strict):
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0, description="max silence from an engine mid-request")
    max_connections: int = Field(1024, ge=1)


class EngineSettings(_Strict):
    prefer: Literal["auto", "llama-server", "llama-cpp-python"] = "auto"
    llama_server_path: Path | None = None
    cache_dir: Path = Path("~/.cache/inferlab").expanduser()
    threads: int | None = Field(None, ge=1)
    startup_timeout_s: float = Field(120.0, gt=0)
    restart_backoff_initial_s: float = Field(0.5, gt=0)
    restart_backoff_max_s: float = Field(30.0, gt=0)
    health_interval_s: float = Field(2.0, gt=0)


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = True
    log_prompts: bool = False


class ModelConfig(_Strict):
    name: str = Field(min_length=1, max_length=256)
    backend: Literal["llamacpp", "openai", "ollama"]
    url: str | None = Field(None, description="base URL of an engine you run (openai: .../v1)")
    path: str | None = Field(None, description="llamacpp: GGUF path, or embedded:smollm2")
    served_name: str | None = Field(None, description="the engine's own name for the model")
    api_key: SecretStr | None = None
    replicas: int = Field(1, ge=1, le=64)
    context_size: int = Field(4096, ge=256)
    parallel: int = Field(4, ge=1, description="llamacpp: concurrent sequences (slots)")
    embeddings: bool = Field(True, description="llamacpp: also serve /v1/embeddings")
    engine_args: list[str] = Field(default_factory=list)
    fim_template: str | None = None

    @field_validator("fim_template")
    @classmethod
    def _known_fim_template(cls, name: str | None) -> str | None:
        if name is not None:
            from inferlab.code.fim import fim_template

            fim_template(name)
        return name

    @model_validator(mode="after")
    def _backend_needs(self) -> "ModelConfig":
        if self.backend in ("openai", "ollama") and not self.url:
            raise ValueError(f"backend {self.backend!r} needs 'url'")
        if self.backend == "llamacpp" and not self.path and not self.url:
            raise ValueError("backend 'llamacpp' needs 'path' (a GGUF file or embedded:smollm2)")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INFERLAB_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    profile: Literal["laptop", "production"] = "laptop"
    data_dir: Path = Path("~/.local/share/inferlab").expanduser()
    server: ServerSettings = Field(default_factory=ServerSettings)
    features: FeatureFlags = Field(default_factory=FeatureFlags)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    engines: EngineSettings = Field(default_factory=EngineSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    models: list[ModelConfig] = Field(default_factory=list)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelConfig]) -> list[ModelConfig]:
        seen: set[str] = set()
        for model in models:
            if model.name in seen:
                raise ValueError(f"model name {model.name!r} is listed twice")
            seen.add(model.name)
        return models

    @model_validator(mode="after")
    def _refuse_remote_without_auth(self) -> "Settings":
        if not is_loopback(self.server.host) and not self.server.insecure_allow_remote:
            raise ValueError(
                f"server.host {self.server.host!r} is not a loopback address and this version has no "
                "authentication: pass --insecure-allow-remote (server.insecure_allow_remote) to accept that"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_profile(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise ConfigError(f"profile: unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    text = resources.files("inferlab").joinpath("profiles", f"{name}.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text) or {})


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | None = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the validated settings, or raise ``ConfigError`` naming the offending key."""
    file_values = read_config_file(config_file) if config_file else {}
    profile_name = profile or os.environ.get("INFERLAB_PROFILE") or file_values.get("profile") or "laptop"
    layered = deep_merge(read_profile(str(profile_name)), file_values)
    layered["profile"] = profile_name

    class LayeredSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _MappingSource(settings_cls, layered))

    try:
        return LayeredSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


class _MappingSource(PydanticBaseSettingsSource):
    """The profile and config file, already merged, as the lowest-precedence settings source."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)
