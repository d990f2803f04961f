"""Build ``llama-server`` (and, on request, ``llama-quantize``) from the llama.cpp sources vendored
in the llama-cpp-python sdist.

PyPI ships no llama.cpp binaries, but it ships llama-cpp-python's source distribution, which
vendors a matching llama.cpp tree. We download that sdist (``pip download --no-binary``), build only
the requested CMake target, and keep the binary in the cache directory next to the others, so the
second run costs nothing and building one tool never rebuilds or replaces another. Nothing is
fetched at build time (the web UI's prebuilt download is switched off).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from inferlab.coordinator.locate import LLAMA_CPP_PYTHON_VERSION, built_llama_tool

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=ON",
)


#: the llama.cpp programs this command builds, and roughly how long each takes on 2 cores
TOOLS = {"llama-server": "about 10 minutes", "llama-quantize": "about 6 minutes"}


class BuildError(Exception):
    pass


def _run(argv: list[str], cwd: Path | None, say: Callable[[str], None]) -> None:
    say("$ " + " ".join(argv))
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            check=False)
    if result.returncode != 0:
        raise BuildError(f"{argv[0]} failed ({result.returncode}):\n" + result.stdout[-4000:])


def build_llama_server(cache_dir: Path, *, jobs: int | None = None, force: bool = False,
                       say: Callable[[str], None] = print) -> Path:
    """Return the path of a built llama-server, building it first if the cache has none."""
    return build_llama_tool(cache_dir, "llama-server", jobs=jobs, force=force, say=say)


def build_llama_tool(cache_dir: Path, tool: str, *, jobs: int | None = None, force: bool = False,
                     say: Callable[[str], None] = print) -> Path:
    """Return the path of a built llama.cpp program (one of :data:`TOOLS`), building only it if the cache has none."""
    if tool not in TOOLS:
        raise BuildError(f"cannot build {tool!r}; choose one of {', '.join(TOOLS)}")
    target = built_llama_tool(cache_dir, tool)
    if target.is_file() and not force:
        say(f"{tool} is already built: {target}")
        return target
    for program in ("cmake", "c++"):
        if shutil.which(program) is None:
            raise BuildError(f"{program} is needed to build {tool} (Debian/Ubuntu: apt-get install cmake g++)")
    jobs = jobs or os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="inferlab-llama-build-") as tmp:
        work = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
              f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)], None, say)
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
        build = work / "build"
        _run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS], None, say)
        say(f"compiling {tool} with {jobs} jobs ({TOOLS[tool]} on 2 cores)...")
        _run(["cmake", "--build", str(build), "--target", tool, "-j", str(jobs)], None, say)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(".tmp")
        shutil.copy2(build / "bin" / tool, staged)
        staged.replace(target)
    say(f"built {target}")
    return target
