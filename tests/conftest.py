"""Shared fixtures. Tests that need a real engine or server say so by name; under CI they fail
instead of skipping, so a missing install step can never hide behind a skip.

``sim``, ``sim_script``, ``make_sim``, ``redis_url`` and ``redis_namespace`` come from the plugin
InferLab ships, ``inferlab.testing.pytest_plugin``."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferlab.config import EngineSettings
from inferlab.coordinator.locate import (
    EngineUnavailable,
    built_llama_tool,
    find_llama_server,
    has_llama_cpp_python,
    resolve_model_path,
)
from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.needs import require

pytest_plugins = ["inferlab.testing.pytest_plugin"]

# The whole suite runs in one process, whose long-lived objects grow test after test (imports, then
# what each test leaves behind: ~5,000 objects). A full collection walks all of them: measured here
# (a llama.cpp build sharing the 2 cores), 0.5 s after the imports and 1.6 s by the 200th test; on a
# busier machine, long enough to blow a 2 s store timeout or a timing bound mid-test. As ``inferlab
# serve`` does at start, the survivors are frozen out of the collector's walks: once after
# collection, then between tests every ``FREEZE_EVERY_TESTS``, so a collection inside a test only
# walks what the last few tests made.
FREEZE_EVERY_TESTS = 25
_TESTS_RUN = pytest.StashKey[int]()


def _collect_and_freeze() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    _collect_and_freeze()


E2E_DIR = Path(__file__).parent / "e2e"


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook (``./dev test`` runs a worker per core)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, but with the end-to-end tests as one file: each test file stays on one
    worker (its module fixtures, and the caches it fills, are never shared between processes), and
    the end-to-end tests all run on the same one, one at a time. They run the real engine with time
    bounds set for one engine at a time; spread over two workers on 2 cores, the scheduling test ran
    past its client timeout, an evaluation sample ended as an error and a store beside them answered
    503. (pytest-xdist's ``xdist_group`` marks cannot do this with pytest 9.2: it renames node ids
    by a field pytest no longer reads.)"""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    e2e = E2E_DIR.relative_to(config.rootpath).as_posix() + "/"  # node ids are relative to the rootdir

    class FileOrEndToEnd(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return e2e if nodeid.startswith(e2e) else nodeid.split("::", 1)[0]

    return FileOrEndToEnd(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield  # the test's fixtures are torn down: what they held is garbage now
    run = item.config.stash.get(_TESTS_RUN, 0) + 1
    item.config.stash[_TESTS_RUN] = run
    if run % FREEZE_EVERY_TESTS == 0:
        _collect_and_freeze()


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's gateway keeps its files (the usage outbox, the SQLite store) in a directory of
    its own, never in the user's ``~/.local/share/inferlab``: settings without ``data_dir`` read it
    from the environment."""
    monkeypatch.setenv("INFERLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    try:
        return resolve_model_path("embedded:smollm2")
    except EngineUnavailable as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="session")
def llama_server_path() -> Path:
    path = find_llama_server(EngineSettings())
    require(path is not None, "llama-server is not built: run `inferlab engines build` (or ./dev setup)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def rpc_build() -> tuple[Path, Path]:
    """llama.cpp's RPC build: an llama-server that takes --rpc, and rpc-server."""
    cache = EngineSettings().cache_dir
    server = built_llama_tool(cache, "llama-server", variant="rpc")
    worker = built_llama_tool(cache, "rpc-server", variant="rpc")
    require(server.is_file() and worker.is_file(),
            "llama.cpp's RPC build is missing: run `inferlab engines build --tool rpc-server` (or ./dev setup test)")
    return server, worker


@pytest.fixture(scope="session")
def llama_cpp_python_server() -> None:
    require(has_llama_cpp_python(), "llama-cpp-python[server] is not installed (./dev setup test installs it)")


def smollm2_config(**model_overrides: object) -> dict[str, object]:
    model = {"name": "smollm2-135m", "backend": "llamacpp", "path": "embedded:smollm2",
             "context_size": 2048, "parallel": 4, "fim_template": "starcoder"}
    model.update(model_overrides)
    return {"models": [model], "logging": {"level": "INFO"}, "engines": {"prefer": "llama-server"}}


@pytest.fixture(scope="session")
def live_gateway(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[GatewayProcess]:
    """One `inferlab serve` process with the real SmolLM2 engine, shared by the read-only e2e tests."""
    gateway = GatewayProcess(smollm2_config()).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def redis_server_binary() -> None:
    """Fault tests start (and stop) a private redis-server; they need the binary."""
    import shutil

    require(shutil.which("redis-server") is not None, "redis-server is not installed")
