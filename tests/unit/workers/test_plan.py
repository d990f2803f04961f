"""``serve --workers N``: which configurations are refused (state that would be per process), and
what each worker gets of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferlab.config import ConfigError, Settings
from inferlab.preflight import preflight
from inferlab.workers import multi_worker_problems, worker_settings

SIM = {"name": "m", "backend": "openai", "url": "http://127.0.0.1:9/v1"}
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/x"


def settings(workers: int = 2, **values: Any) -> Settings:
    return Settings(server={"workers": workers}, models=[SIM], **values)


def test_one_worker_is_never_refused() -> None:
    assert multi_worker_problems(settings(1, features={"ratelimit": True, "resources": True})) == []


def test_shared_state_in_redis_and_postgresql_is_accepted() -> None:
    shared = settings(4, features={"ratelimit": True, "resources": True, "auth": True, "cache": True},
                      redis_url="redis://127.0.0.1:6379/0", database_url=PG)
    assert multi_worker_problems(shared) == []


def test_limits_in_memory_are_refused_with_the_reason() -> None:
    [problem] = multi_worker_problems(settings(features={"ratelimit": True, "metering": False}))
    assert "each of the 2 workers" in problem and "redis_url" in problem


def test_resources_in_memory_are_refused() -> None:
    problems = multi_worker_problems(settings(features={"resources": True, "metering": False},
                                              redis_url="redis://127.0.0.1:6379/0", resources={"backend": "memory"}))
    assert len(problems) == 1 and problems[0].startswith("resources:")


def test_sqlite_store_is_refused_and_metering_can_be_turned_off() -> None:
    [problem] = multi_worker_problems(settings())  # metering is on by default, into SQLite
    assert "SQLite" in problem and "features.metering off" in problem
    [problem] = multi_worker_problems(settings(features={"auth": True}, database_url="sqlite+aiosqlite:///x.db"))
    assert "auth and metering" in problem and "features.metering off" not in problem
    assert multi_worker_problems(settings(features={"metering": False})) == []


def test_in_process_clickhouse_and_engine_groups_are_refused() -> None:
    grouped = {"name": "g", "backend": "llamacpp", "path": "embedded:smollm2", "distributed": {"rpc_workers": 1}}
    problems = multi_worker_problems(Settings(server={"workers": 2}, models=[grouped], features={"metering": False},
                                              usage={"analytics": {"backend": "chdb"}}))
    assert [p.split(" ")[0] for p in problems] == ["usage.analytics.backend", "models"]


def test_preflight_lists_every_problem_under_server_workers() -> None:
    with pytest.raises(ConfigError) as refused:
        preflight(settings(features={"ratelimit": True}))
    text = str(refused.value)
    assert text.count("server.workers 2:") == 2 and "ratelimit:" in text and "database_url:" in text


def test_each_worker_has_an_outbox_and_clone_directory_of_its_own(tmp_path: Path) -> None:
    base = settings(data_dir=tmp_path, features={"metering": False})
    first, second = worker_settings(base, 0), worker_settings(base, 1)
    assert first.metering.outbox_path == tmp_path / "usage-outbox.worker-0.db"
    assert second.metering.outbox_path == tmp_path / "usage-outbox.worker-1.db"
    assert first.codelab.context.root == tmp_path / "codelab" / "worker-0"
    assert first.model_dump(exclude={"metering", "codelab"}) == base.model_dump(exclude={"metering", "codelab"})
    configured = settings(metering={"outbox_path": tmp_path / "spool" / "events.db"})
    assert worker_settings(configured, 3).metering.outbox_path == tmp_path / "spool" / "events.worker-3.db"
