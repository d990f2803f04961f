"""An engine group InferLab supervises (``coordinator/group.py``), as one replica of a pool.

It speaks the OpenAI API through its leader, so requests go through ``OpenAICompatibleBackend``;
what this adds: availability follows the group's state (a group with a dead rank is out of
routing at once), and the leader's address is read when it changes (a group that moved to other
nodes answers somewhere else).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.http import DEFAULT_MAX_STREAM_LINE_BYTES
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.backends.refused import RefusedStream
from inferlab.errors import ServiceUnavailable
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, StreamChunk


class GroupState(Protocol):
    @property
    def value(self) -> str: ...


class SupervisedGroup(Protocol):
    name: str
    url: str  # the leader's root URL while the group is ready

    @property
    def state(self) -> GroupState: ...

    @property
    def api_key(self) -> str | None: ...

    @property
    def pid(self) -> int | None: ...

    def is_ready(self) -> bool: ...


class EngineGroupBackend:
    def __init__(self, group: SupervisedGroup, client: EngineClient, *, health_path: str = "/health",
                 close_after_stream: bool = True, max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES) -> None:
        self.name = group.name
        self.engine = group
        self._client = client
        self._health_path = health_path
        self._close_after_stream = close_after_stream
        self._max_line_bytes = max_line_bytes
        self._http: OpenAICompatibleBackend | None = None

    def _leader(self) -> OpenAICompatibleBackend:
        url = self.engine.url
        if self._http is None or self._http.base_url != url + "/v1":
            self._http = OpenAICompatibleBackend(
                self.name, url + "/v1", self._client, api_key=self.engine.api_key,
                health_url=url + self._health_path, close_after_stream=self._close_after_stream,
                max_line_bytes=self._max_line_bytes,
            )
        return self._http

    def is_available(self) -> bool:
        return self.engine.is_ready()

    def _not_ready(self) -> ServiceUnavailable:
        return ServiceUnavailable(f"engine group {self.name} is {self.engine.state.value}; try again shortly",
                                  retry_after=2)

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        if not self.engine.is_ready():
            raise self._not_ready()
        return await self._leader().complete(request)

    def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        if not self.engine.is_ready():
            return RefusedStream(self._not_ready())
        return self._leader().stream(request)

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        if not self.engine.is_ready():
            raise self._not_ready()
        return await self._leader().embed(request)

    async def health(self) -> BackendHealth:
        if not self.engine.is_ready():
            return BackendHealth(healthy=False, detail=self.engine.state.value)
        return await self._leader().health()
