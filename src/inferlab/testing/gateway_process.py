"""Run ``inferlab serve`` as a real child process, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def llama_server(binary: Path, model: Path, *, ctx_size: int, parallel: int, ready_s: float = 60) -> Iterator[str]:
    """A llama-server process run as an operator runs an engine of their own; yields its URL once
    ``/health`` answers 200, and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--ctx-size", str(ctx_size), "--parallel", str(parallel), "--no-webui"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if process.poll() is not None:
                raise RuntimeError("llama-server exited")
            try:
                if http_get(url + "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server not ready in {ready_s:g} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


class GatewayProcess:
    """``inferlab serve --config <yaml>`` on a free port; logs go to a file you can read back."""

    def __init__(self, config: dict[str, Any], *, env: dict[str, str] | None = None, port: int | None = None,
                 workdir: Path | None = None) -> None:
        """``workdir``: reuse another run's directory (its data directory: the store, the usage
        outbox) — a restart of the same gateway."""
        self.port = port or free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="inferlab-gw-"))
        self.config_path = self.workdir / "inferlab.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = self.workdir / "gateway.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_ready: bool = True, timeout: float = 180.0) -> GatewayProcess:
        argv = [sys.executable, "-m", "inferlab", "serve", "--config", str(self.config_path),
                "--port", str(self.port), "--data-dir", str(self.workdir / "data")]
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: bytes = b""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                status, last = http_get(self.url + "/ready")
                body = orjson.loads(last) if status == 200 else {}
                if status == 200 and all(state == "ready" for state in body.get("engines", {}).values()):
                    return dict(body)  # ready, and every managed engine up (a model may already serve before)
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"gateway not ready in {timeout}s: {last!r}\n{self.logs()[-3000:]}")

    def ready_status(self) -> dict[str, Any]:
        return dict(orjson.loads(http_get(self.url + "/ready")[1]))

    def logs(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> int:
        """``kill -9``: no drain, no clean-up, nothing flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self._log.close()
        return int(self.process.returncode)

    def stop(self, timeout: float = 60.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode or 0)
