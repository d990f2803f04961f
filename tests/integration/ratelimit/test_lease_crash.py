"""A gateway killed with SIGKILL while holding concurrency slots on Redis: its leases are renewed
while it lives and stop being renewed when it dies, so a second gateway admits the key again one
lease TTL later — not after minutes."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess
from inferlab.testing.pytest_plugin import RedisNamespace

from .harness import MODEL, gateway_config, start_all, stop_all

LEASE_TTL_S = 2.0
CLIENT = "198.51.100.7"


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=600, token_delay_s=0.05)


async def _attempt(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    async with session.post(url + "/v1/chat/completions", json=body, headers={"X-Forwarded-For": CLIENT}) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


@pytest.mark.redis
async def test_a_killed_gateways_slots_free_within_one_lease_ttl(
    sim: EngineSimulator, redis_namespace: RedisNamespace
) -> None:
    config = gateway_config(sim, redis_namespace.url, [{"scope": "key", "max_concurrent": 2}],
                            lease_ttl_s=LEASE_TTL_S, redis_prefix=redis_namespace.prefix)
    doomed, survivor = GatewayProcess(config), GatewayProcess(config)
    holders = aiohttp.ClientSession()
    try:
        await start_all([doomed, survivor])
        body = {"model": MODEL, "messages": [{"role": "user", "content": "a long answer"}],
                "max_tokens": 600, "stream": True}  # 30 s of tokens: held until the gateway dies
        streams = [await holders.post(doomed.url + "/v1/chat/completions", json=body,
                                      headers={"X-Forwarded-For": CLIENT}) for _ in range(2)]
        for stream in streams:
            assert stream.status == 200
            await stream.content.readline()
        async with aiohttp.ClientSession() as session:
            status, retry_after = await _attempt(session, survivor.url)
            assert status == 429 and retry_after is not None and int(retry_after) <= 2  # not the lease TTL
            await asyncio.sleep(2 * LEASE_TTL_S)  # renewed by the living holder: still taken
            assert (await _attempt(session, survivor.url))[0] == 429

            doomed.signal(signal.SIGKILL)
            killed_at = time.monotonic()
            while (await _attempt(session, survivor.url))[0] == 429:
                assert time.monotonic() - killed_at < LEASE_TTL_S + 2.0, "the dead gateway's slots are still taken"
                await asyncio.sleep(0.1)
            freed_after = time.monotonic() - killed_at
        assert freed_after <= LEASE_TTL_S + 2.0
    finally:
        await holders.close()
        await stop_all([doomed, survivor])
