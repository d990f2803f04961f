"""``inferlab serve --workers 2`` as a real process: the cross-replica limit holds exactly when the
replicas are workers of one server, the OpenAI surface answers through the official SDK, a killed
worker is replaced while its sibling serves, and a configuration with per-process state is refused
with the reason. (The same with the real engine: tests/e2e/test_workers_real_engine.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

from ..ratelimit.harness import MODEL, burst, gateway_config


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=2)


def two_workers(sim: EngineSimulator, redis_url: str, rpm: int) -> GatewayProcess:
    # A generous Redis bound: what is under test is the count, not the failure policy (fail-open admits
    # on a timeout; tests/integration/ratelimit/test_redis_failure.py tests that), and a loaded CI host
    # saw 5 s pool waits under the 1,000-request burst.
    config = gateway_config(sim, redis_url, [{"scope": "key", "rpm": rpm}], redis_timeout_s=30.0)
    config["server"] = {"workers": 2}
    config["features"]["metering"] = False  # its store would be SQLite (refused with workers); limits are the point
    config["logging"] = {"level": "INFO", "json_format": True}
    return GatewayProcess(config)


def wait_for_log(gateway: GatewayProcess, text: str, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while gateway.logs().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} ({count}x) in:\n{gateway.logs()[-3000:]}"
        time.sleep(0.05)


def worker_pids(gateway: GatewayProcess) -> list[int]:
    assert gateway.process is not None
    pid = gateway.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.redis
async def test_exactly_the_limit_across_two_workers_and_a_killed_worker_is_replaced(
        sim: EngineSimulator, redis_url: str) -> None:
    gateway = two_workers(sim, redis_url, rpm=100)
    try:
        await asyncio.to_thread(gateway.start)
        await asyncio.to_thread(wait_for_log, gateway, '"workers":2')  # both listen on the port
        pids = worker_pids(gateway)
        assert len(pids) == 2
        for run in range(2):
            statuses = await burst([gateway.url], f"203.0.113.{run + 1}", 1000)
            assert statuses.count(200) == 100, f"run {run}: {statuses.count(200)} admitted"
            assert statuses.count(429) == 900

        await openai_surface(gateway.url)

        os.kill(pids[0], signal.SIGKILL)
        statuses = await burst([gateway.url], "203.0.113.9", 50)  # the sibling serves meanwhile
        assert statuses == [200] * 50
        await asyncio.to_thread(wait_for_log, gateway, "worker exited, starting it again")
        await asyncio.to_thread(wait_for_log, gateway, '"msg":"worker starting"', 3)
        assert await asyncio.to_thread(_await, lambda: len(worker_pids(gateway)) == 2)
        assert pids[0] not in worker_pids(gateway)
    finally:
        exit_code = await asyncio.to_thread(gateway.stop)
    assert exit_code == 0
    assert not any(map(alive, pids[1:])), "a worker outlived the server"
    assert '"stopped"' in gateway.logs()


async def openai_surface(url: str) -> None:
    """The gateway's OpenAI routes through the official SDK, on fresh connections (either worker)."""
    for _ in range(3):
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30) as client:
            reply = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content and reply.usage is not None
            stream = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                          stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
            assert len((await client.embeddings.create(model=MODEL, input=["a", "b"])).data) == 2
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _await(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_limits_in_process_memory_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "inferlab.yaml"
    config.write_text('features: {ratelimit: true}\nmodels: [{name: m, backend: openai, url: "http://127.0.0.1:9/v1"}]\n'
                      'ratelimit: {limits: [{scope: key, rpm: 10}]}\n')
    result = subprocess.run([sys.executable, "-m", "inferlab", "serve", "--config", str(config), "--workers", "2",
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "server.workers 2: ratelimit: limits and quotas kept in process memory" in message
    assert "set redis_url" in message and "Traceback" not in result.stderr
