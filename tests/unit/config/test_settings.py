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


@pytest.mark.parametrize(
    "text, where, suggestion",
    [
        ("server:\n  prot: 1\n", "server.prot", "port"),
        ("modles: []\n", "modles", "models"),
        ("models:\n  - {name: a, backend: openai, url: 'http://x/v1', ulr: 'http://y'}\n", "models.0.ulr",
         "url"),
        ("ratelimit:\n  limits:\n    - {scope: key, rmp: 5}\n", "ratelimit.limits.0.rmp", "rpm"),
        ("pricing:\n  models:\n    qwen: {input_per_milion: 1}\n", "pricing.models.qwen.input_per_milion",
         "input_per_million"),
        ("auth:\n  jwt:\n    isuer: x\n", "auth.jwt.isuer", "issuer"),
    ],
)
def test_unknown_keys_suggest_the_nearest_one(tmp_path: Path, text: str, where: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text))
    assert f"  {where}: " in str(raised.value) and f"did you mean '{suggestion}'?" in str(raised.value)


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("INFERLAB_SERVR__PORT", "server"),
        ("INFERLAB_SERVER__PROT", "port"),
        ("INFERLAB_REDIS_ULR", "redis_url"),
        ("inferlab_logging__levle", "level"),
        ("INFERLAB_RATELIMIT__FAILURE__QUTOA", "quota"),
    ],
)
def test_unknown_environment_variables_are_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, suggestion: str
) -> None:
    monkeypatch.setenv(name, "1")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert name in str(raised.value) and f"did you mean '{suggestion}'?" in str(raised.value)


def test_known_and_non_setting_environment_variables_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLAB_PRICING__MODELS__QWEN__INPUT_PER_MILLION", "0.5")
    monkeypatch.setenv("INFERLAB_AUTH__JWT__LEEWAY_S", "5")
    monkeypatch.setenv("INFERLAB_VENV", ".venv")  # ./dev's own
    monkeypatch.setenv("INFERLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # the test suite's own
    settings = load_settings()
    assert settings.pricing.price("qwen").input_per_million == 0.5 and settings.auth.jwt.leeway_s == 5
    monkeypatch.setenv("INFERLAB_SERVER__PORT__X", "1")
    with pytest.raises(ConfigError, match="INFERLAB_SERVER__PORT__X"):
        load_settings()


def openai_model(**extra: object) -> dict[str, object]:
    return {"name": "a", "backend": "openai", **extra}


@pytest.mark.parametrize(
    "overrides, where",
    [
        ({"models": [openai_model(url="localhost:8000/v1")]}, "models.0.url"),
        ({"models": [openai_model(url="127.0.0.1:8000")]}, "models.0.url"),
        ({"models": [openai_model(url="ftp://files/v1")]}, "models.0.url"),
        ({"models": [openai_model(url="http:///v1")]}, "models.0.url"),
        ({"models": [openai_model(url="http://host:99999/v1")]}, "models.0.url"),
        ({"models": [openai_model(urls=["http://a/v1", "htp://b/v1"])]}, "models.0.urls"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url"),
        ({"redis_url": "redis://"}, "redis_url"),
        ({"database_url": "mysql://u:secret@db/x"}, "database_url"),
        ({"database_url": "postgresql+psycopg2://u:secret@db/x"}, "database_url"),
        ({"database_url": "postgresql+asyncpg:///x"}, "database_url"),
        ({"auth": {"jwt": {"issuer": "i", "jwks_url": "file:///etc/jwks.json"}}}, "auth.jwt.jwks_url"),
    ],
)
def test_urls_need_a_known_scheme_and_a_host(overrides: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(overrides=overrides)
    assert f"  {where}" in str(raised.value) and "secret" not in str(raised.value)


def test_good_urls_are_accepted_and_plain_database_schemes_get_the_async_driver() -> None:
    settings = load_settings(overrides={
        "models": [openai_model(urls=["http://10.0.0.1:8000/v1", "https://api.example.com/v1"])],
        "redis_url": "rediss://:pw@redis.example.com:6380/1",
        "database_url": "postgresql://u:pw@db.example.com:5432/inferlab",
    })
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:pw@db.example.com:5432/inferlab"
    for url in ("sqlite:///var/lib/inferlab.db", "sqlite+aiosqlite:////tmp/x.db",
                "postgresql+asyncpg://u@/inferlab?host=/var/run/postgresql"):
        assert load_settings(overrides={"database_url": url}).database_url is not None
    assert load_settings(overrides={"redis_url": "unix:///run/redis.sock"}).redis_url is not None
