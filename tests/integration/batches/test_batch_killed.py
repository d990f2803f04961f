"""``kill -9`` of a gateway (a real ``inferlab serve`` process) in the middle of a batch, then a
restart on the same data directory: the batch completes, and every ``custom_id`` is answered
exactly once in its output file. The engine is the simulator (slow enough that the kill lands
mid-batch); the client is the official openai SDK.

Why it holds: the runner records each line's answer in the store before it takes another, and a
line's primary key makes a second answer impossible; the restarted runner takes the batch over
once the killed one's lease ran out and runs only the unanswered lines. At most the lines in
flight at the kill (``concurrency``) reach the engine twice; none is answered twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest

from inferlab.testing import EngineSimulator, SimulatorScript
from inferlab.testing.gateway_process import GatewayProcess

MODEL = "sim-model"
LINES = 60
CONCURRENCY = 2


def config(sim: EngineSimulator) -> dict[str, Any]:
    return {"features": {"metering": True}, "logging": {"level": "INFO"},
            "batches": {"lease_s": 1.0, "poll_s": 0.1, "concurrency": CONCURRENCY, "reserve_slots": 0},
            "models": [{"name": MODEL, "backend": "openai", "url": f"{sim.base_url}/v1"}]}


def batch_input() -> bytes:
    return "\n".join(json.dumps({
        "custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": f"count to {i}"}], "max_tokens": 8}})
        for i in range(LINES)).encode()


async def wait_for(client: openai.AsyncOpenAI, batch_id: str, done: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = await client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < deadline, f"batch not there in {timeout_s} s: {batch}"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(120)
async def test_a_batch_survives_kill_9_and_answers_every_line_once() -> None:
    sim = EngineSimulator(SimulatorScript(completion_tokens=8, token_delay_s=0.01), model=MODEL)  # ~0.1 s a line
    await sim.start()
    first = GatewayProcess(config(sim))
    second: GatewayProcess | None = None
    try:
        await asyncio.to_thread(first.start, timeout=60)
        async with openai.AsyncOpenAI(base_url=first.url + "/v1", api_key="unused", max_retries=0) as client:
            uploaded = await client.files.create(file=("lines.jsonl", batch_input()), purpose="batch")
            batch = await client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                completion_window="24h")
            running = await wait_for(client, batch.id, lambda b: b.request_counts.completed >= 15, 30)
        await asyncio.to_thread(first.kill)
        assert running.status == "in_progress" and running.request_counts.completed < LINES
        engine_calls_before = sim.requests_total

        second = GatewayProcess(config(sim), workdir=first.workdir, port=first.port)
        await asyncio.to_thread(second.start, timeout=60)
        async with openai.AsyncOpenAI(base_url=second.url + "/v1", api_key="unused", max_retries=0) as client:
            finished = await wait_for(client, batch.id, lambda b: b.status in ("completed", "failed"), 60)
            assert finished.status == "completed"
            assert finished.request_counts.completed == LINES and finished.request_counts.failed == 0
            assert finished.output_file_id is not None and finished.error_file_id is None
            output = (await client.files.content(finished.output_file_id)).text
        answers = [json.loads(line) for line in output.splitlines()]
        assert sorted(a["custom_id"] for a in answers) == sorted(f"line-{i}" for i in range(LINES))  # once each
        assert all(a["response"]["status_code"] == 200 and a["response"]["body"]["choices"] for a in answers)
        # the second gateway ran only what was left: at most the lines in flight at the kill ran twice
        assert sim.requests_total <= LINES + CONCURRENCY
        assert sim.requests_total - engine_calls_before <= LINES - running.request_counts.completed + CONCURRENCY
        assert "batch finished" in second.logs()
    finally:
        if second is not None:
            await asyncio.to_thread(second.stop)
        elif first.process is not None and first.process.poll() is None:
            await asyncio.to_thread(first.stop)
        await sim.stop()
