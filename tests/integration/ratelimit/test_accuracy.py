"""Three gateway processes, one Redis: a limit of 100 a minute admits exactly 100 of 1,000
concurrent requests, every time (bench/ratelimit_cache.py repeats it 20 times)."""

from __future__ import annotations

import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

from .harness import burst, gateway_config, start_all, stop_all

REPEATS = 3


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=2)


@pytest.mark.redis
async def test_exactly_the_limit_across_three_replicas(sim: EngineSimulator, redis_url: str) -> None:
    config = gateway_config(sim, redis_url, [{"scope": "key", "rpm": 100}], redis_timeout_s=5.0)
    gateways = [GatewayProcess(config) for _ in range(3)]
    try:
        await start_all(gateways)
        for run in range(REPEATS):
            statuses = await burst([g.url for g in gateways], f"203.0.113.{run + 1}", 1000)
            assert statuses.count(200) == 100, f"run {run}: {statuses.count(200)} admitted"
            assert statuses.count(429) == 900
    finally:
        await stop_all(gateways)
