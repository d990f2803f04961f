"""Run untrusted generated code: one separate, limited (and, where possible, isolated) process per program.

Generated code is never imported or ``exec``-ed in InferLab's process. Each program is written to
an empty temporary directory and run by a fresh interpreter (``python -I -S -B``: no site
packages, no ``PYTHON*`` variables, no bytecode files) started through
:mod:`inferlab.evaluation.sandbox_launcher`, with a scrubbed environment (``PATH``, ``LC_CTYPE``,
nothing else), a wall-clock timeout after which its whole process group is killed, and CPU-time,
address-space, file-size, process-count and open-file limits.

Isolation (``Isolation``) is decided once, by :meth:`Sandbox.start`:

* ``full`` (root on Linux, where ``unshare(2)`` is allowed): new network namespace (no network at
  all), read-only view of every file system but the program's own directory, the home directory
  hidden, a private ``/proc`` and PID namespace, and an unprivileged uid per concurrent slot (so one
  program's fork bomb cannot exhaust another's process count), ``no_new_privs``.
* ``limits``: resource limits, scrubbed environment and a temporary directory only. The program
  runs as the current user: it can read and write what that user can and can open network
  connections. :attr:`Isolation.notice` says so, and ``inferlab eval`` prints it.

``auto`` (the default) probes ``full`` and falls back to ``limits`` with that notice.
"""

from __future__ import annotations

import asyncio
import marshal
import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inferlab.evaluation.sandbox_launcher import SETUP_FAILED

__all__ = ["Execution", "Isolation", "IsolationMode", "Sandbox", "SandboxLimits", "SandboxUnavailable"]

IsolationMode = Literal["auto", "full", "limits"]
LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
_SETUP_MARK = "sandbox setup failed:"
_OUTPUT_TAIL = 2000
_MB = 1 << 20


class SandboxUnavailable(Exception):
    """Full isolation was required and cannot be had here; the message says why."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_mb: int = 1024
    file_mb: int = 16
    processes: int = 32
    open_files: int = 64

    def rlimits(self) -> dict[str, int]:
        return {"cpu_seconds": self.cpu_seconds, "memory_bytes": self.memory_mb * _MB,
                "file_bytes": self.file_mb * _MB, "processes": self.processes, "open_files": self.open_files}


@dataclass(frozen=True, slots=True)
class Isolation:
    mode: Literal["full", "limits"]
    notice: str

    @property
    def network_isolated(self) -> bool:
        return self.mode == "full"


@dataclass(frozen=True, slots=True)
class Execution:
    """How one program ended: ``passed`` is exit status 0 within the limits."""

    status: Literal["passed", "failed", "timeout", "sandbox-error"]
    exit_code: int | None
    seconds: float
    output: str  # the tail of stdout and stderr

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_FULL_NOTICE = ("generated code runs isolated: no network, read-only file systems except its own empty"
                " directory, home directory hidden, own PID namespace, unprivileged uid, resource limits")
_LIMITS_NOTICE = ("generated code is NOT isolated ({reason}): it runs as the current user with resource"
                  " limits, a scrubbed environment and an empty directory, but it can read and write what this"
                  " user can and open network connections")


class Sandbox:
    """Runs programs, ``concurrency`` at a time. Call :meth:`start` once before :meth:`run`."""

    def __init__(self, limits: SandboxLimits | None = None, *, concurrency: int = 2,
                 isolation: IsolationMode = "auto", python: str | None = None, uid_base: int = 1_999_000_000) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.limits = limits or SandboxLimits()
        self._requested = isolation
        self._python = python or os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        self._prefix = os.path.realpath(sys.base_prefix)
        self._uid_base = uid_base
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(concurrency):
            self._slots.put_nowait(slot)
        self._isolation: Isolation | None = None

    @property
    def isolation(self) -> Isolation:
        if self._isolation is None:
            raise RuntimeError("Sandbox.start() has not been called")
        return self._isolation

    async def start(self) -> Isolation:
        """Decide the isolation mode (probing full isolation with a trivial program) and return it."""
        if self._isolation is not None:
            return self._isolation
        if self._requested == "limits":
            self._isolation = Isolation("limits", _LIMITS_NOTICE.format(reason="--sandbox limits was asked for"))
            return self._isolation
        reason = _full_isolation_impossible()
        if reason is None:
            probe = await self._execute("pass\n", isolate=True)
            if probe.passed:
                self._isolation = Isolation("full", _FULL_NOTICE)
                return self._isolation
            reason = probe.output.strip().splitlines()[-1] if probe.output.strip() else f"probe ended {probe.status}"
        if self._requested == "full":
            raise SandboxUnavailable(f"full sandbox isolation is not available here: {reason}")
        self._isolation = Isolation("limits", _LIMITS_NOTICE.format(reason=reason))
        return self._isolation

    async def run(self, program: str) -> Execution:
        """Run one Python program; its exit status decides pass or fail."""
        return await self._execute(program, isolate=self.isolation.mode == "full")

    async def _execute(self, program: str, *, isolate: bool) -> Execution:
        slot = await self._slots.get()
        root = await asyncio.to_thread(_prepare_root, program)
        try:
            return await self._launch(root, isolate=isolate, slot=slot)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)
            self._slots.put_nowait(slot)

    async def _launch(self, root: Path, *, isolate: bool, slot: int) -> Execution:
        work = root / "work"
        config = {
            "isolate": isolate, "work": str(work), "program": "program.py", "python": self._python,
            "interpreter_prefix": self._prefix, "staging": str(root / "interpreter"),
            "hide": _hidden_directories(), "uid": self._uid_base + slot, "gid": 65534,
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_CTYPE": "C.UTF-8"},
            "limits": self.limits.rlimits(),
        }
        started = time.perf_counter()
        with (root / "output").open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-B", str(LAUNCHER), marshal.dumps(config).hex(),
                stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT,
                cwd=root, env={"PATH": "/usr/bin:/bin"}, start_new_session=True,
            )
            timed_out = False
            try:
                code = await asyncio.wait_for(process.wait(), self.limits.wall_seconds)
            except TimeoutError:
                timed_out = True
                _kill_group(process.pid)
                code = await process.wait()
            except asyncio.CancelledError:  # the run was interrupted: leave nothing behind
                _kill_group(process.pid)
                raise
        seconds = time.perf_counter() - started
        text = await asyncio.to_thread(_tail, root / "output")
        if timed_out:
            return Execution("timeout", None, seconds, text)
        if code == SETUP_FAILED and _SETUP_MARK in text:
            return Execution("sandbox-error", code, seconds, text)
        return Execution("passed" if code == 0 else "failed", code, seconds, text)


def _kill_group(pid: int) -> None:
    """Kill the launcher's process group (it leads its own session); the kernel kills the rest."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _full_isolation_impossible() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "namespaces and a separate uid need root; run as root (e.g. in a container) for full isolation"
    return None


def _hidden_directories() -> list[str]:
    home = str(Path.home())
    return [home] if home not in ("/", "") and Path(home).is_dir() else []


def _tail(path: Path) -> str:
    with path.open("rb") as output:
        output.seek(0, os.SEEK_END)
        size = output.tell()
        output.seek(max(0, size - _OUTPUT_TAIL))
        return output.read().decode("utf-8", errors="replace")


def _prepare_root(program: str) -> Path:
    """A fresh directory: ``work/program.py`` (the launcher hands work/ to the sandbox uid), an
    empty ``interpreter/`` mount point, and later ``output``."""
    root = Path(tempfile.mkdtemp(prefix="inferlab-sandbox-"))
    root.chmod(0o755)  # the sandbox uid must reach work/
    (root / "interpreter").mkdir()
    (root / "work").mkdir()
    (root / "work" / "program.py").write_text(program, encoding="utf-8")
    return root
