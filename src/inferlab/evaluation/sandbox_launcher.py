"""The first process of a sandbox: it builds the cage, then runs the untrusted program inside it.

Run as a script (``python -I -S -B sandbox_launcher.py <config>``) by :mod:`inferlab.evaluation.sandbox`,
never imported by InferLab: it uses the standard library only. Its argument (a marshalled dict, hex) says where the
program is and which limits apply. When it runs as root on Linux it isolates the program fully:

1. new mount, network, PID, IPC and UTS namespaces (``unshare(2)``): the network namespace has only
   a loopback interface that is down, so every connection fails;
2. the parent's home directory (``/root``) is hidden under an empty tmpfs (the interpreter is bound
   back into it when it lives there), every mount is remounted read-only, and only the program's
   own empty working directory stays writable;
3. a fresh ``/proc`` for the new PID namespace; the launcher dies with InferLab and the namespace's
   first process (a reaper) with the launcher (``PR_SET_PDEATHSIG``), and the kernel then kills
   every process left in it;
4. the program runs under an unprivileged uid with no supplementary groups and ``PR_SET_NO_NEW_PRIVS``, under
   CPU-time, address-space, file-size, process-count and open-file limits.

Otherwise (``"isolate": false``) it applies the limits only; the parent chose that mode after a
probe and reports it to the user.

Exit codes: the program's own, ``128 + signal`` when a signal killed it, ``SETUP_FAILED`` (125) when
the cage could not be built (the reason is on stderr after ``sandbox setup failed:``).
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import signal
import sys
from typing import Any

__all__: list[str] = []

SETUP_FAILED = 125
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
               "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
_LIMITS = {"cpu_seconds": resource.RLIMIT_CPU, "memory_bytes": resource.RLIMIT_AS,
           "file_bytes": resource.RLIMIT_FSIZE, "processes": resource.RLIMIT_NPROC,
           "open_files": resource.RLIMIT_NOFILE}


class SetupFailed(Exception):
    pass


def _libc() -> ctypes.CDLL:
    """The C library the interpreter itself is linked with (``dlopen(NULL)``: no search, no ctypes.util)."""
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupFailed(f"{what}: {os.strerror(errno)}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(libc.mount(_bytes(source), target.encode(), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data)),
           f"mount {target}")


def _bytes(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _unescape(path: str) -> str:
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes."""
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts() -> list[tuple[str, int]]:
    """Every mount point and the per-mount flags a read-only remount must keep."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            fields = line.split()
            flags = sum(_KEPT_FLAGS.get(option, 0) for option in fields[5].split(","))
            found.append((_unescape(fields[4]), flags))
    return found


def _build_filesystem(libc: ctypes.CDLL, config: dict[str, Any]) -> None:
    """Hide the home, keep the interpreter reachable, make everything read-only but the work dir."""
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    staging = config["staging"]
    prefix = config["interpreter_prefix"]
    for hidden in config["hide"]:
        rebind = prefix == hidden or prefix.startswith(hidden.rstrip("/") + "/")
        if rebind:
            _mount(libc, prefix, staging, None, MS_BIND | MS_REC)
        _mount(libc, "tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        if rebind:
            os.makedirs(prefix, exist_ok=True)
            _mount(libc, staging, prefix, None, MS_BIND | MS_REC)
    work = config["work"]
    _mount(libc, work, work, None, MS_BIND)
    for point, flags in _mounts():
        if point == work:
            continue
        result = libc.mount(None, point.encode(), None, ctypes.c_ulong(MS_REMOUNT | MS_BIND | MS_RDONLY | flags), None)
        if result != 0 and point == "/":
            _check(result, "remount / read-only")


def _apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = _LIMITS[name]
        soft = value
        hard = value + 1 if name == "cpu_seconds" else value  # SIGXCPU first, then SIGKILL a second later
        resource.setrlimit(which, (soft, hard))


def _status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _exec_program(config: dict[str, Any], libc: ctypes.CDLL | None) -> None:
    """In the child that becomes the program: limits, identity, then exec (never returns)."""
    os.chdir(config["work"])
    _apply_limits(config["limits"])
    if libc is not None:
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    argv = [config["python"], "-I", "-S", "-B", config["program"]]
    os.execve(config["python"], argv, config["env"])


def _run_isolated(config: dict[str, Any]) -> int:
    libc = _libc()
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")  # InferLab gone: so is the cage
    namespaces = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    os.chown(config["work"], config["uid"], config["gid"])
    _check(libc.unshare(namespaces), "unshare")
    _build_filesystem(libc, config)
    reaper = os.fork()  # the first process of the new PID namespace
    if reaper == 0:
        try:
            _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            program = os.fork()
            if program == 0:
                _exec_program(config, libc)
            _, status = os.waitpid(program, 0)
            os._exit(_status(status))
        except (SetupFailed, OSError) as exc:
            print(f"sandbox setup failed: {exc}", file=sys.stderr, flush=True)
            os._exit(SETUP_FAILED)
    _, status = os.waitpid(reaper, 0)
    return _status(status)


def _run_limited(config: dict[str, Any]) -> int:
    program = os.fork()
    if program == 0:
        try:
            _exec_program(config, None)
        except OSError as exc:
            print(f"sandbox setup failed: {exc}", file=sys.stderr, flush=True)
            os._exit(SETUP_FAILED)
    _, status = os.waitpid(program, 0)
    return _status(status)


def main(argv: list[str]) -> int:
    config = marshal.loads(bytes.fromhex(argv[1]))  # same interpreter as the parent; no json/re to import
    try:
        return _run_isolated(config) if config["isolate"] else _run_limited(config)
    except (SetupFailed, OSError) as exc:
        print(f"sandbox setup failed: {exc}", file=sys.stderr, flush=True)
        return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
