"""A real Ray cluster of two nodes on this machine, for tests and benchmarks.

``ray start --head`` and a second ``ray start --address`` node, each in a session of its own (so
killing a node kills every process of it, as losing a machine would), each on its own loopback
address (Ray resolves 127.0.0.1 to the machine's routable address; other 127.x addresses stay on
loopback). The worker node advertises a custom resource so tests can tell the nodes apart. The
head's failure detection is shortened so a lost node is noticed within about two seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
FAST_FAILURE_DETECTION = {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
                          "health_check_timeout_ms": 500}


class LocalRayCluster:
    def __init__(self, ray: Path, *, port: int, head_cpus: int = 4, worker_cpus: int = 4) -> None:
        self._ray = str(ray)
        self.port = port
        self._head_cpus = head_cpus
        self._worker_cpus = worker_cpus
        self._temp = tempfile.mkdtemp(prefix="inferlab-ray-")
        self._head: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[bytes] | None = None
        self._env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{self.port}"

    def _start(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(Path(self._temp) / log, "wb") as out:
            return subprocess.Popen([self._ray, "start", "--block", "--disable-usage-stats", *argv], stdout=out,
                                    stderr=subprocess.STDOUT, env=self._env, start_new_session=True)

    def start(self, timeout_s: float = 120.0) -> None:
        self._head = self._start(["--head", "--node-ip-address", HEAD_IP, "--port", str(self.port),
                                  "--num-cpus", str(self._head_cpus), "--include-dashboard=false",
                                  "--temp-dir", self._temp, "--system-config", json.dumps(FAST_FAILURE_DETECTION)],
                                 "head.log")
        self._wait_for("head.log", timeout_s)
        self.start_worker(timeout_s)

    def start_worker(self, timeout_s: float = 120.0) -> None:
        self._worker = self._start(["--address", self.address, "--node-ip-address", WORKER_IP,
                                    "--num-cpus", str(self._worker_cpus),
                                    "--resources", json.dumps({"worker_node": self._worker_cpus})], "worker.log")
        self._wait_for("worker.log", timeout_s)

    def _wait_for(self, log: str, timeout_s: float) -> None:
        path = Path(self._temp) / log
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if b"will now block forever" in path.read_bytes():
                return
            time.sleep(0.5)
        raise RuntimeError(f"ray did not start within {timeout_s:g}s: {path.read_bytes()[-2000:]!r}")

    def kill_worker(self) -> None:
        """Lose the worker node: SIGKILL every process of it at once."""
        if self._worker is not None:
            _kill_group(self._worker)
            self._worker = None

    def stop(self) -> None:
        for process in (self._worker, self._head):
            if process is not None:
                _kill_group(process)
        self._worker = self._head = None
        shutil.rmtree(self._temp, ignore_errors=True)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()
