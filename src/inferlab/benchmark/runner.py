"""Drive a benchmark: warm up, then send every request under the configured load pattern.

With a fixed concurrency and no rate, ``concurrency`` workers pull requests from one queue (no
task per pending request). With a finite ``request_rate``, arrivals are a Poisson process (seeded
exponential gaps) and ``concurrency``, when set, caps requests in flight with a semaphore.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence

import aiohttp

from inferlab.benchmark.client import RequestOutcome, make_session, send_request
from inferlab.benchmark.config import BenchmarkConfig
from inferlab.benchmark.metrics import BenchmarkResult, build_result
from inferlab.benchmark.workload import PreparedRequest, build_requests

OnResult = Callable[[RequestOutcome], None]


async def _run_workers(
    session: aiohttp.ClientSession, config: BenchmarkConfig, requests: Sequence[PreparedRequest],
    workers: int, on_result: OnResult | None,
) -> list[RequestOutcome]:
    outcomes: list[RequestOutcome | None] = [None] * len(requests)
    queue: Iterator[int] = iter(range(len(requests)))

    async def worker() -> None:
        for index in queue:
            outcome = await send_request(session, config.url, requests[index], stream=config.stream)
            outcomes[index] = outcome
            if on_result is not None:
                on_result(outcome)

    await asyncio.gather(*(worker() for _ in range(min(workers, len(requests)))))
    return [o for o in outcomes if o is not None]


async def _run_arrivals(
    session: aiohttp.ClientSession, config: BenchmarkConfig, requests: Sequence[PreparedRequest],
    on_result: OnResult | None,
) -> list[RequestOutcome]:
    rng = random.Random(config.seed)
    limit = asyncio.Semaphore(config.concurrency) if config.concurrency else None

    async def one(request: PreparedRequest) -> RequestOutcome:
        if limit is None:
            outcome = await send_request(session, config.url, request, stream=config.stream)
        else:
            async with limit:
                outcome = await send_request(session, config.url, request, stream=config.stream)
        if on_result is not None:
            on_result(outcome)
        return outcome

    tasks: list[asyncio.Task[RequestOutcome]] = []
    try:
        for request in requests:
            tasks.append(asyncio.create_task(one(request)))
            if math.isfinite(config.request_rate):
                await asyncio.sleep(rng.expovariate(config.request_rate))
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def _run_all(
    session: aiohttp.ClientSession, config: BenchmarkConfig, requests: Sequence[PreparedRequest],
    on_result: OnResult | None,
) -> list[RequestOutcome]:
    if config.concurrency is not None and not math.isfinite(config.request_rate):
        return await _run_workers(session, config, requests, config.concurrency, on_result)
    return await _run_arrivals(session, config, requests, on_result)


async def run_benchmark(config: BenchmarkConfig, *, on_result: OnResult | None = None) -> BenchmarkResult:
    """Run one benchmark in this event loop. ``on_result`` is called after each timed request."""
    requests = build_requests(config, config.num_prompts)
    warmup = build_requests(config, config.warmup, offset=config.num_prompts) if config.warmup else []
    async with make_session(api_key=config.api_key, timeout=config.timeout, keepalive=config.keepalive) as session:
        if warmup:
            await _run_workers(session, config, warmup, config.concurrency or len(warmup), None)
        start = time.perf_counter()
        outcomes = await _run_all(session, config, requests, on_result)
        duration = time.perf_counter() - start
    return build_result(config, outcomes, duration)
