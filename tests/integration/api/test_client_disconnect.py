"""A client that goes away before the answer (non-streamed, or a stream before its first byte)
makes a real ``inferlab serve`` close the engine's request at once, and its rate-limit ticket is
settled: the concurrency slot comes back and the prompt is charged — counted with the engine's
tokenizer (``/tokenize``: the simulator's one token a word), nothing generated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

MODEL = "sim-model"
TPM = 1_000_000
MAX_TOKENS = 5
CANCEL_WITHIN_S = 0.3
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def sim_script() -> SimulatorScript:
    return SimulatorScript(completion_tokens=MAX_TOKENS)


@pytest.fixture
async def gateway(sim: EngineSimulator) -> AsyncIterator[GatewayProcess]:
    config = {
        "features": {"ratelimit": True},
        "ratelimit": {"limits": [{"scope": "key", "tpm": TPM, "max_concurrent": 1}]},
        "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}],
    }
    process = await asyncio.to_thread(GatewayProcess(config).start, timeout=60)
    yield process
    await asyncio.to_thread(process.stop)


def request_bytes(stream: bool) -> tuple[bytes, int]:
    """A raw HTTP request and the prompt tokens the gateway reserves for it (body bytes / 4 + 1)."""
    body = orjson.dumps({"model": MODEL, "messages": HELLO, "max_tokens": MAX_TOKENS, "stream": stream})
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body, len(body) // 4 + 1


async def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def normal_request(gateway: GatewayProcess) -> tuple[int, int]:
    """A normal request: (tokens left in the key's bucket before it, tokens it used), once the
    concurrency slot is free (a slot still held after a second would be a leak)."""
    raw = orjson.dumps({"model": MODEL, "messages": HELLO, "max_tokens": MAX_TOKENS})
    reserved = len(raw) // 4 + 1 + MAX_TOKENS
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            async with session.post(
                gateway.url + "/v1/chat/completions", data=raw, headers={"Content-Type": "application/json"}
            ) as response:
                body = orjson.loads(await response.read())
                if response.status != 429:
                    break
            await asyncio.sleep(0.05)
        assert response.status == 200, body
        free = int(response.headers["x-ratelimit-remaining-tokens"]) + reserved
        return free, int(body["usage"]["total_tokens"])


@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "stream-before-first-byte"])
async def test_a_client_that_leaves_cancels_the_engine_and_is_settled(
    gateway: GatewayProcess, sim: EngineSimulator, stream: bool
) -> None:
    free_before, used_before = await normal_request(gateway)
    sim.script.prefill_delay_s = 30.0  # a slow engine: nothing comes back for 30 s
    raw, _ = request_bytes(stream)
    _, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(raw)
    await writer.drain()
    await wait_for(lambda: sim.in_flight == 1, 10)  # the engine is working on it
    left_at = time.monotonic()
    writer.close()
    await writer.wait_closed()
    await wait_for(lambda: sim.stats.cancelled_total == 1, 5)
    assert sim.state.last_cancelled_at is not None
    took = sim.state.last_cancelled_at - left_at
    assert took < CANCEL_WITHIN_S, f"the engine's request closed {took * 1000:.0f} ms after the client left"
    sim.script.prefill_delay_s = 0.0
    free_after, _ = await normal_request(gateway)  # 200: the one concurrency slot came back
    prompt = len(HELLO[0]["content"].split())  # as the engine's tokenizer counts it
    assert free_before - used_before - free_after == prompt  # the prompt the client sent is charged, no more
