"""A pool's capacity read from a real llama-server: the coordinator's own command line, then
``GET /props``. What the engine reports must be what ``managed_llamacpp`` predicts from the model's
``parallel`` and ``context_size``: slots x per-slot context."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from inferlab.config import EngineSettings, ModelConfig
from inferlab.coordinator.locate import llama_engine_command
from inferlab.resources import PoolCapacity, capacity_of, llamacpp_capacity, managed_llamacpp
from inferlab.testing.gateway_process import free_port

pytestmark = pytest.mark.engine


def _get_json(url: str, api_key: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"llama-server exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("llama-server did not become healthy")


def test_props_of_a_managed_llama_server_give_its_capacity(llama_server_path: Path, smollm2_gguf: Path) -> None:
    model = ModelConfig(name="smollm2", backend="llamacpp", path=str(smollm2_gguf), context_size=1024, parallel=3,
                        engine_args=["--threads", "1"])
    port = free_port()
    command = llama_engine_command(model, EngineSettings(llama_server_path=llama_server_path), port)
    assert command.flavour == "llama-server"
    process = subprocess.Popen(command.argv, env={**os.environ, **dict(command.env)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process)
        replica = llamacpp_capacity(_get_json(url + "/props", command.api_key))
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert replica == managed_llamacpp(3, 1024)
    assert capacity_of([replica, replica], overcommit=1.5) == PoolCapacity(6, 6 * 1024, 1.5)
