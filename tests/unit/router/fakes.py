"""In-process fake replicas for pool and failover tests (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from inferlab.errors import EngineRejected, InferLabError, UpstreamError
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, StreamChunk


class FakeBackend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.available = True
        self.fail = 0  # fail the next N calls with a 502 (-1: always)
        self.reject = False
        self.delay_s = 0.0
        self.hang = False
        self.error: InferLabError | None = None  # raised by every call while set
        self.calls = 0
        self.healthy = True

    def is_available(self) -> bool:
        return self.available

    async def _behave(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        if self.reject:
            raise EngineRejected("too long", status=400)
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise UpstreamError(f"{self.name} failed")

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        await self._behave()
        return InferenceResponse(body={"replica": self.name}, usage=None)

    async def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        await self._behave()
        yield StreamChunk(data={"replica": self.name})

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        return await self.complete(request)

    async def health(self) -> BackendHealth:
        return BackendHealth(healthy=self.healthy)
