"""The ``live`` fixture: a gateway process in front of the engine simulator (``harness.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

from .harness import Live, live_config


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=4)


@pytest.fixture
async def live(sim: EngineSimulator) -> AsyncIterator[Live]:
    gateway = GatewayProcess(live_config(sim))
    await asyncio.to_thread(gateway.start)  # the simulator answers on this loop meanwhile
    try:
        root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
        assert sim.base_url is not None
        yield Live(gateway, root.strip("\"',"), sim.base_url)
    finally:
        await asyncio.to_thread(gateway.stop)
