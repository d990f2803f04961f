"""The scheduler end to end: a live ``inferlab serve`` in front of a real llama.cpp engine (SmolLM2-135M)
with one slot, the official ``openai`` SDK as the client, two tenants on two tiers (free: low class,
enterprise: high class). Under overload — the slot busy, free requests already queued — the
enterprise requests that arrive later are served first; the engine is told the classes' order too
is not part of this test (llama.cpp has no priority scheduling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest

from inferlab.testing.gateway_process import GatewayProcess, llama_server

pytestmark = pytest.mark.engine
PEPPER = "e2e-scheduling-pepper-0123456789"
ASK = [{"role": "user", "content": "Count from one to twenty in words."}]


@pytest.fixture(scope="module")
def engine(llama_server_path: Path, smollm2_gguf: Path) -> Iterator[str]:
    """One llama-server with a single slot: every request beyond one waits in the gateway's queue."""
    with llama_server(llama_server_path, smollm2_gguf, ctx_size=2048, parallel=1) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(engine: str) -> Iterator[GatewayProcess]:
    config = {
        "features": {"auth": True},
        "auth": {"pepper": PEPPER},
        "models": [{"name": "smollm2", "backend": "openai", "url": f"{engine}/v1", "engine": "llamacpp",
                    "max_concurrency_per_replica": 1, "queue": {"policy": "tiered", "max_wait_s": 120}}],
        "logging": {"level": "INFO"},
    }
    process = GatewayProcess(config).start(timeout=60)
    yield process
    process.stop()


def keys(gateway: GatewayProcess) -> tuple[str, dict[str, str]]:
    root = next(word for line in gateway.logs().splitlines() for word in line.split() if word.startswith("il-"))
    made = {}
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}, timeout=10) as admin:
        for tenant, tier in (("freeco", "free"), ("bigco", "enterprise")):
            assert admin.post("/admin/tenants", json={"id": tenant, "tier": tier}).status_code == 201
            user = admin.post("/admin/users", json={"name": "dev", "tenant_id": tenant}).json()
            made[tenant] = str(admin.post("/admin/keys", json={"name": "sdk", "user_id": user["id"]}).json()["key"])
    return root, made


async def test_under_overload_the_higher_tier_is_served_first(gateway: GatewayProcess) -> None:
    root, made = keys(gateway)
    free = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=made["freeco"], max_retries=0, timeout=120)
    big = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=made["bigco"], max_retries=0, timeout=120)
    order: list[str] = []
    waited: dict[str, float] = {}

    async def ask(client: openai.AsyncOpenAI, tag: str, max_tokens: int = 12, *, hold: bool = False) -> None:
        started = time.perf_counter()
        stream = await client.chat.completions.create(
            model="smollm2", messages=ASK, max_tokens=max_tokens, temperature=0, stream=True,
            extra_body={"ignore_eos": True} if hold else None)
        async for chunk in stream:
            if tag not in waited and chunk.choices and chunk.choices[0].delta.content:
                waited[tag] = time.perf_counter() - started  # time to first token: mostly the queue
        order.append(tag)

    async def depth() -> int:
        async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {root}"}) as admin:
            pools: Any = (await admin.get("/admin/backends")).json()["data"]
        return int(next(pool for pool in pools if pool["role"] == "generate")["queue"]["depth"])

    async def until_depth(expected: int) -> None:
        deadline = time.monotonic() + 30
        while await depth() != expected:
            assert time.monotonic() < deadline, f"queue never reached {expected}"
            await asyncio.sleep(0.02)

    try:
        # takes the one slot, long enough (every token, EOS ignored) for the queue to fill behind it
        tasks = [asyncio.create_task(ask(free, "free-running", max_tokens=300, hold=True))]
        await asyncio.sleep(0.5)
        for index in range(3):
            tasks.append(asyncio.create_task(ask(free, f"free-{index}")))
            await until_depth(index + 1)
        for index in range(3):  # later arrivals, higher tier
            tasks.append(asyncio.create_task(ask(big, f"enterprise-{index}")))
            await until_depth(4 + index)
        await asyncio.wait_for(asyncio.gather(*tasks), 240)
    finally:
        await free.close()
        await big.close()
    assert order == ["free-running", "enterprise-0", "enterprise-1", "enterprise-2", "free-0", "free-1", "free-2"]
    assert max(waited[f"enterprise-{i}"] for i in range(3)) < min(waited[f"free-{i}"] for i in range(3))
