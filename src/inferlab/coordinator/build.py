"""Build ``llama-server`` (and, on request, ``llama-quantize`` or the RPC variant) from the llama.cpp
sources vendored in the llama-cpp-python sdist.

PyPI ships no llama.cpp binaries, but it ships llama-cpp-python's source distribution, which
vendors a matching llama.cpp tree. We download that sdist (``pip download --no-binary``), build only
the requested CMake targets, and keep the binaries in the cache directory, so the second run costs
nothing and building one tool never rebuilds or replaces another. Nothing is fetched at build time
(the web UI's prebuilt download is switched off).

The ``rpc`` variant is one more CMake configuration (``GGML_RPC=ON``) built once for two programs:
``rpc-server`` (a worker that lends its memory and compute to a leader over TCP) and a
``llama-server`` that accepts ``--rpc host:port,...``. It lives in a directory of its own
(:func:`built_llama_tool` with ``variant="rpc"``).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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
# Intel AMX off on x86-64 (GCC and Clang: an explicit -mno-* wins over -march=native's choice). Some
# virtual machines advertise AMX in /proc/cpuinfo without supporting its tile state: ggml's AMX
# matrix multiply then dies of a general protection fault while loading the model (seen on this
# project's 2-core Firecracker VMs). The other x86 kernels (AVX2, AVX-512, VNNI) stay native.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def _cpu_flags() -> tuple[str, ...]:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    return (f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}")


@dataclass(frozen=True, slots=True)
class BuildVariant:
    """One CMake configuration of llama.cpp and the programs built from it."""

    name: str  # "" for the plain build
    flags: tuple[str, ...]
    programs: tuple[tuple[str, str], ...]  # (the name InferLab keeps it under, its CMake target)
    duration: str  # roughly, on 2 cores

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(target for _, target in self.programs)


#: the llama.cpp programs this command builds; each tool names the build that makes it
TOOLS = {
    "llama-server": BuildVariant("", (), (("llama-server", "llama-server"),), "about 10 minutes"),
    "llama-quantize": BuildVariant("", (), (("llama-quantize", "llama-quantize"),), "about 6 minutes"),
    # llama.cpp names the worker's target ggml-rpc-server (it was rpc-server before); we keep it as rpc-server
    "rpc-server": BuildVariant("rpc", ("-DGGML_RPC=ON",),
                               (("llama-server", "llama-server"), ("rpc-server", "ggml-rpc-server")), "about 12 minutes"),
}


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
    """Return the path of a built llama.cpp program (one of :data:`TOOLS`), building only it if the cache has none.

    ``rpc-server`` builds the RPC variant: it and its RPC-capable ``llama-server``, side by side.
    """
    if tool not in TOOLS:
        raise BuildError(f"cannot build {tool!r}; choose one of {', '.join(TOOLS)}")
    variant = TOOLS[tool]
    targets = {name: built_llama_tool(cache_dir, name, variant=variant.name) for name, _ in variant.programs}
    if all(path.is_file() for path in targets.values()) and not force:
        say(f"{tool} is already built: {targets[tool]}")
        return targets[tool]
    for program in ("cmake", "c++"):
        if shutil.which(program) is None:
            raise BuildError(f"{program} is needed to build {tool} (Debian/Ubuntu: apt-get install cmake g++)")
    with tempfile.TemporaryDirectory(prefix="inferlab-llama-build-") as tmp:
        _compile(Path(tmp), variant, targets, jobs or os.cpu_count() or 2, say)
    say(f"built {', '.join(str(path) for path in targets.values())}")
    return targets[tool]


def _compile(work: Path, variant: BuildVariant, targets: dict[str, Path], jobs: int,
             say: Callable[[str], None]) -> None:
    _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
          f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)], None, say)
    sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    source = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
    build = work / "build"
    _run(["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS, *_cpu_flags(), *variant.flags], None, say)
    say(f"compiling {', '.join(name for name, _ in variant.programs)} with {jobs} jobs ({variant.duration} on 2 cores)...")
    _run(["cmake", "--build", str(build), "--target", *variant.targets, "-j", str(jobs)], None, say)
    for name, cmake_target in variant.programs:
        target = targets[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(".tmp")
        shutil.copy2(build / "bin" / cmake_target, staged)
        staged.replace(target)
