"""The memory estimate against the resident memory of a real llama-server (CPU backend).

For each context size and KV type the server is started with SmolLM2, and VmRSS is read from
/proc/PID/status once GET /health answers 200 — and again after one real completion, when the
compute buffer has been used. The estimate (weights from the GGUF file, KV cache, compute buffer
and the runtime overhead constant measured once at ``-c 512``) must be within ±10 % of both.
Run with ``-s`` to see the table.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inferlab.planning import estimate_memory, load_catalogue, model_from_gguf, resolve_deployment

pytestmark = pytest.mark.engine

MIB = 2**20
Start = Callable[[int, str], "tuple[subprocess.Popen[bytes], int]"]
CASES = [(2048, "f16"), (2048, "q8_0"), (8192, "f16"), (8192, "q8_0"), (32768, "f16"), (32768, "q8_0")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"llama-server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("llama-server did not become healthy")


@pytest.fixture
def server(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[Start]:
    started: list[subprocess.Popen[bytes]] = []

    def start(ctx: int, kv: str) -> tuple[subprocess.Popen[bytes], int]:
        port = _free_port()
        args = [str(llama_server_path), "--host", "127.0.0.1", "--port", str(port), "-m", str(smollm2_gguf),
                "-c", str(ctx), "--threads", "2", "-np", "1", "--cache-type-k", kv, "--cache-type-v", kv]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        _wait_healthy(port, proc)
        return proc, port

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _complete(port: int) -> None:
    body = json.dumps({"prompt": "hello " * 200, "n_predict": 8}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert resp.status == 200


def test_estimate_within_10_percent_of_llama_server_rss(server: Start, smollm2_gguf: Path) -> None:
    model = model_from_gguf(smollm2_gguf, "smollm2-gguf")
    catalogue = load_catalogue().with_model(model)
    rows = []
    for ctx, kv in CASES:
        proc, port = server(ctx, kv)
        healthy = _rss_mib(proc.pid)
        _complete(port)
        loaded = _rss_mib(proc.pid)
        proc.terminate()
        d = resolve_deployment(catalogue, model="smollm2-gguf", gpu="cpu-ddr4-3200", kv_dtype=kv)
        estimate = estimate_memory(catalogue, d, ctx).required / MIB
        rows.append((ctx, kv, estimate, healthy, loaded))
    print(f"\n{'ctx':>6} {'kv':5} {'estimate MiB':>13} {'RSS healthy':>12} {'err':>7} {'RSS loaded':>11} {'err':>7}")
    for ctx, kv, estimate, healthy, loaded in rows:
        print(f"{ctx:6} {kv:5} {estimate:13.1f} {healthy:12.1f} {estimate / healthy - 1:+7.1%}"
              f" {loaded:11.1f} {estimate / loaded - 1:+7.1%}")
    for ctx, kv, estimate, healthy, loaded in rows:
        assert abs(estimate / healthy - 1) <= 0.10, (ctx, kv, estimate, healthy)
        assert abs(estimate / loaded - 1) <= 0.10, (ctx, kv, estimate, loaded)
