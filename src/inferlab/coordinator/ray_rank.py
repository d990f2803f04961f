"""What runs inside a Ray actor for one rank: the rank's process on the actor's node.

Standard library only: the Ray provider ships this module to the cluster's workers by value, so
they need no InferLab installed. The child gets SIGKILL when the actor's process dies (a node lost,
an actor killed), so no rank outlives its actor.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading
from collections import deque

PR_SET_PDEATHSIG = 1


def _die_with_parent(libc: ctypes.CDLL) -> None:
    """Between fork and exec: only a system call (libc was loaded before the fork), no locks taken."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RankRunner:
    """One rank's process; methods are called from the coordinator (a threaded actor: ``wait``
    blocks while ``stop`` and ``tail`` still answer)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._tail: deque[str] = deque(maxlen=20)
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def start(self, argv: list[str], values: dict[str, str], env: dict[str, str], host: str,
              port: int | None) -> dict[str, object]:
        chosen = port or _free_port(host)
        filled = []
        for arg in argv:
            text = arg
            for key, value in {**values, "host": host, "port": str(chosen)}.items():
                text = text.replace("{" + key + "}", value)
            filled.append(text)
        self._process = subprocess.Popen(  # the child dies with this actor's process (prctl)
            filled, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            preexec_fn=lambda: _die_with_parent(self._libc),  # noqa: PLW1509 - a lone prctl, see above
        )
        threading.Thread(target=self._pump, daemon=True).start()
        return {"pid": self._process.pid, "port": chosen, "host": host}

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)

    def wait(self) -> str:
        assert self._process is not None
        return f"exit code {self._process.wait()}"

    def stop(self, grace_s: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            return

    def tail(self) -> list[str]:
        return list(self._tail)
