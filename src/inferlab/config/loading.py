"""From files and the environment to one validated ``Settings``.

Precedence, highest first: explicit overrides (CLI flags) > environment (``INFERLAB_SERVER__PORT``)
> the config file > the profile (``laptop`` by default) > the defaults of the sections. Each layer
is a mapping, merged into the one below key by key, as pydantic-settings merges its own sources;
the environment is read by pydantic-settings' own ``EnvSettingsSource``, with ``Settings``'
prefix and delimiter. The result is validated once, by ``Settings.model_validate``: no settings
class is made per call.
"""

from __future__ import annotations

import os
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource

from inferlab.config.checks import unknown_environment, unknown_setting_hint
from inferlab.config.settings import Profile, Settings

PROFILES: tuple[str, ...] = typing.get_args(Profile)


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


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
    """Build the validated settings, or raise ``ConfigError`` naming the offending key (or variable)."""
    unknown = unknown_environment(Settings, os.environ)
    if unknown:
        raise ConfigError("\n".join(["invalid environment:", *(f"  {line}" for line in unknown)]))
    file_values = read_config_file(config_file) if config_file else {}
    profile_name = profile or os.environ.get("INFERLAB_PROFILE") or file_values.get("profile") or "laptop"
    layered = deep_merge(read_profile(str(profile_name)), file_values)
    layered["profile"] = profile_name
    environment = EnvSettingsSource(Settings)()
    try:
        return Settings.model_validate(deep_merge(deep_merge(layered, environment), overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        hint = unknown_setting_hint(Settings, error["loc"]) if error["type"] == "extra_forbidden" else ""
        lines.append(f"  {where}: {error['msg']}{hint}")
    return "\n".join(lines)
