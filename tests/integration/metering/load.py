"""The load generator of the metering fault tests: clients sending chat requests (streamed and
not, alternately), each with an ``x-request-id`` of its own, and counting for themselves which
they saw complete — a stream's ``[DONE]``, a whole JSON answer — and how long each took."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadGenerator:
    url: str  # the gateway's base URL
    model: str
    clients: int = 4
    pause_s: float = 0.02
    streamed: bool | None = None  # None: streamed and whole answers alternately
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    completed: set[str] = field(default_factory=set)  # request ids whose end the client saw
    failed: int = 0
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds) of completed ones
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def run_until(self, stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(self._client(session, stop) for _ in range(self.clients)))

    async def _client(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            number = next(self._ids)
            request_id = f"{self.run}-{number}"
            started = time.monotonic()
            try:
                stream = number % 2 == 0 if self.streamed is None else self.streamed
                done = await self._one(session, request_id, stream=stream)
            except (TimeoutError, aiohttp.ClientError, OSError):
                done = False
            if done:
                self.completed.add(request_id)
                self.latencies.append((started, time.monotonic() - started))
            else:
                self.failed += 1
                await asyncio.sleep(0.2)  # the gateway is down: do not spin
            await asyncio.sleep(self.pause_s)

    async def _one(self, session: aiohttp.ClientSession, request_id: str, *, stream: bool) -> bool:
        body = {"model": self.model, "messages": [{"role": "user", "content": "meter me please"}], "stream": stream}
        async with session.post(self.url + "/v1/chat/completions", json=body,
                                headers={"x-request-id": request_id}) as response:
            raw = await response.read()
        if response.status != 200:
            return False
        return raw.endswith(b"data: [DONE]\n\n") if stream else raw.startswith(b"{") and b'"choices"' in raw

    def latencies_between(self, start: float, end: float) -> list[float]:
        return sorted(seconds for started, seconds in self.latencies if start <= started < end)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
