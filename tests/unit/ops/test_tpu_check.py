"""scripts/ops/tpu-check.sh against the JetStream simulator: the server half passes, and on this
machine (no TPU) the device half says so and the script fails."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from inferlab.testing import SimulatorScript
from inferlab.testing.pytest_plugin import MakeSim

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "ops" / "tpu-check.sh"


async def test_tpu_check_talks_to_jetstream(make_sim: MakeSim) -> None:
    sim = await make_sim(SimulatorScript(completion_tokens=8), protocol="jetstream")
    result = await asyncio.to_thread(subprocess.run, ["bash", str(SCRIPT), str(sim.base_url)], capture_output=True,
                                     text=True, check=False, timeout=60)
    assert "ok: JetStream health: {\"is_live\":\"True\"}" in result.stdout
    assert "ok: JetStream generated text" in result.stdout
    assert sim.last_request == {"max_tokens": 8, "text_content": {"text": "Hello"}}
    has_tpu = await asyncio.to_thread(lambda: any(Path("/dev").glob("accel*")))
    assert (result.returncode == 0) == has_tpu, result.stdout
