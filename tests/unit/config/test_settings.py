from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inferlab.yaml"
    path.write_text(text)
    return path


def test_laptop_profile_serves_the_embedded_model_with_no_file() -> None:
    settings = load_settings()
    assert settings.profile == "laptop"
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8000
    assert [(m.name, m.backend, m.path) for m in settings.models] == [("smollm2-135m", "llamacpp", "embedded:smollm2")]


def test_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "server:\n  port: 9001\n  drain_timeout_s: 5\nlogging:\n  level: DEBUG\n")
    assert load_settings(config).server.port == 9001
    monkeypatch.setenv("INFERLAB_SERVER__PORT", "9002")
    settings = load_settings(config)
    assert settings.server.port == 9002 and settings.server.drain_timeout_s == 5
    assert load_settings(config, overrides={"server": {"port": 9003}}).server.port == 9003


def test_models_in_the_file_replace_the_profile_models(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  - name: qwen\n    backend: openai\n    url: http://127.0.0.1:9/v1\n")
    assert [m.name for m in load_settings(config).models] == ["qwen"]


@pytest.mark.parametrize(
    "text, key",
    [
        ("server:\n  prot: 1\n", "server.prot"),
        ("server:\n  port: -3\n", "server.port"),
        ("models:\n  - name: a\n    backend: vllm-magic\n", "models.0.backend"),
        ("models:\n  - name: a\n    backend: openai\n", "models.0"),
        ("models:\n  - {name: a, backend: openai, url: 'http://x/v1', fim_template: nope}\n", "models.0.fim_template"),
        ("features:\n  teleport: true\n", "features.teleport"),
        ("models:\n  - {name: a, backend: openai, url: 'http://x'}\n  - {name: a, backend: openai, url: 'http://y'}\n", "models"),
    ],
)
def test_invalid_config_names_the_offending_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text))
    assert f"  {key}" in str(raised.value)


def test_unreadable_files_and_profiles_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "server: [unclosed"))
    with pytest.raises(ConfigError, match="unknown profile 'cloud'"):
        load_settings(profile="cloud")


def test_the_example_file_documents_valid_keys() -> None:
    example = Path(__file__).resolve().parents[3] / "inferlab.example.yaml"
    settings = load_settings(example)
    assert settings.models[0].name == "smollm2-135m"
