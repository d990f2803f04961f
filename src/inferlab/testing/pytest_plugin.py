"""Pytest fixtures over InferLab's test doubles: a started engine simulator and a Redis namespace.

Enable the plugin in a ``conftest.py``::

    pytest_plugins = ["inferlab.testing.pytest_plugin"]

It needs ``pytest`` and ``pytest-asyncio`` (the ``test`` extra); ``import inferlab.testing`` alone
never imports them.

Fixtures::

    sim_script       the SimulatorScript ``sim`` starts with: SimulatorScript(); override it in a
                     test module or conftest to give every ``sim`` there another script
    sim              an EngineSimulator serving "sim-model" (OpenAI protocol) on a free local port,
                     started before the test and stopped after it
    make_sim         await make_sim(script=None, *, model="sim-model", protocol="openai"): a started
                     simulator, for tests that need several, another model or the Ollama protocol;
                     every one is stopped after the test (``sim`` is one of them)
    redis_url        the shared Redis: $INFERLAB_TEST_REDIS_URL, else redis://127.0.0.1:6379/0
    redis_namespace  RedisNamespace(url, prefix, client): a client, and a random key prefix
                     ("test:<hex>:") whose keys are deleted (SCAN + DEL) after the test

A test that needs Redis is skipped when it is not reachable, and fails instead under CI
(``CI=true``): ``inferlab.testing.needs.require``, which applies that rule to any condition.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from inferlab.testing.needs import redis_available, require, shared_redis_url
from inferlab.testing.simulator import EngineSimulator, Protocol, SimulatorScript

__all__ = ["MakeSim", "RedisNamespace"]

MakeSim = Callable[..., Awaitable[EngineSimulator]]


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript()


@pytest_asyncio.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    started: list[EngineSimulator] = []

    async def make(
        script: SimulatorScript | None = None, *, model: str = "sim-model", protocol: Protocol = "openai"
    ) -> EngineSimulator:
        simulator = EngineSimulator(script, model=model, protocol=protocol)
        await simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in reversed(started):
        await simulator.stop()


@pytest_asyncio.fixture
async def sim(make_sim: MakeSim, sim_script: SimulatorScript) -> EngineSimulator:
    return await make_sim(sim_script)


@pytest.fixture
def redis_url() -> str:
    """The shared Redis (never stopped by tests)."""
    url = shared_redis_url()
    require(redis_available(url), f"Redis is not reachable at {url}")
    return url


@dataclass(frozen=True)
class RedisNamespace:
    """A ``redis.asyncio.Redis`` client and the key prefix a test keeps its keys under.

    The fixture closes ``client`` after the test; the code under test may close it first."""

    url: str
    prefix: str
    client: Any


@pytest_asyncio.fixture
async def redis_namespace(redis_url: str) -> AsyncIterator[RedisNamespace]:
    from inferlab.redisconn import redis_client

    namespace = RedisNamespace(redis_url, f"test:{uuid.uuid4().hex}:",
                               redis_client(redis_url, timeout_s=2.0, max_connections=32))
    try:
        yield namespace
    finally:
        cleaner = redis_client(redis_url, timeout_s=2.0, max_connections=1)
        try:
            keys = [key async for key in cleaner.scan_iter(match=namespace.prefix + "*", count=1000)]
            if keys:
                await cleaner.delete(*keys)
        finally:
            await cleaner.aclose()
            await namespace.client.aclose()
