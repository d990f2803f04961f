"""Secure defaults: auth on in production, remote listening only with auth (or the explicit opt-out)."""

from __future__ import annotations

import pytest

from inferlab.config import ConfigError, load_settings


def test_production_has_auth_laptop_does_not() -> None:
    assert load_settings(profile="production").features.auth is True
    assert load_settings(profile="laptop").features.auth is False


def test_remote_host_needs_auth() -> None:
    with pytest.raises(ConfigError, match="authentication is off"):
        load_settings(profile="laptop", overrides={"server": {"host": "0.0.0.0"}})
    assert load_settings(profile="production", overrides={"server": {"host": "0.0.0.0"}}).server.host == "0.0.0.0"


def test_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLAB_FEATURES__AUTH", "true")
    monkeypatch.setenv("INFERLAB_DATABASE_URL", "postgresql+asyncpg://u:p@db/inferlab")
    monkeypatch.setenv("INFERLAB_AUTH__PEPPER", "shared-pepper")
    monkeypatch.setenv("INFERLAB_DATA_DIR", "/tmp/inferlab-env")
    settings = load_settings(profile="laptop")
    assert settings.features.auth is True
    assert settings.database_url is not None and settings.database_url.get_secret_value().endswith("/inferlab")
    assert settings.auth.pepper is not None and settings.auth.pepper.get_secret_value() == "shared-pepper"
    assert str(settings.data_dir) == "/tmp/inferlab-env"
    assert "shared-pepper" not in settings.model_dump_json()


def test_jwt_refuses_symmetric_algorithms() -> None:
    with pytest.raises(ConfigError, match="asymmetric"):
        load_settings(overrides={"auth": {"jwt": {"issuer": "x", "jwks_file": "/x", "algorithms": ["HS256"]}}})
    with pytest.raises(ConfigError, match="jwks"):
        load_settings(overrides={"auth": {"jwt": {"issuer": "x"}}})
