"""A llama.cpp engine that InferLab runs itself (llama-server, or llama-cpp-python's server).

It speaks the OpenAI API, so requests go through ``OpenAICompatibleBackend``; what this adds is
knowledge of the supervised process: availability follows the engine's state, health is the
process's own ``/health``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.http import DEFAULT_MAX_STREAM_LINE_BYTES
from inferlab.backends.openai_compat import OpenAICompatibleBackend
from inferlab.backends.refused import RefusedStream
from inferlab.coordinator.engine_process import ManagedEngine
from inferlab.errors import ServiceUnavailable
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, StreamChunk


def _mean_normalised(vectors: list[list[float]]) -> list[float]:
    width = len(vectors[0])
    mean = [sum(vector[i] for vector in vectors) / len(vectors) for i in range(width)]
    norm = math.sqrt(sum(x * x for x in mean)) or 1.0
    return [x / norm for x in mean]


def pool_token_embeddings(result: InferenceResponse) -> InferenceResponse:
    """llama-cpp-python's server has no pooling setting: for a model without a pooling type it
    returns one vector per token. Pool them the way llama-server does (mean, then L2-normalise),
    so clients get one vector per input whichever engine runs."""
    for item in result.body.get("data") or []:
        embedding = item.get("embedding")
        if isinstance(embedding, list) and embedding and isinstance(embedding[0], list):
            item["embedding"] = _mean_normalised(embedding)
    result.raw = None
    return result


class ManagedLlamaCppBackend:
    def __init__(
        self, engine: ManagedEngine, client: EngineClient,
        max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES,
    ) -> None:
        self.name = engine.name
        self.engine = engine
        self._http = OpenAICompatibleBackend(
            engine.name, engine.url + "/v1", client,
            api_key=engine.command.api_key, health_url=engine.url + engine.command.health_path,
            close_after_stream=True, max_line_bytes=max_line_bytes,
            forward_request_id=engine.command.flavour != "llama-cpp-python",
        )

    def is_available(self) -> bool:
        return self.engine.is_ready()

    def _not_ready(self) -> ServiceUnavailable:
        return ServiceUnavailable(f"engine {self.name} is {self.engine.state.value}; try again shortly", retry_after=2)

    def _require_ready(self) -> None:
        if not self.engine.is_ready():
            raise self._not_ready()

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        self._require_ready()
        return await self._http.complete(request)

    def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        if not self.engine.is_ready():  # refused on the first anext, like any failure to open
            return RefusedStream(self._not_ready())
        return self._http.stream(request)

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        self._require_ready()
        result = await self._http.embed(request)
        if self.engine.command.flavour == "llama-cpp-python":
            return pool_token_embeddings(result)
        return result

    async def health(self) -> BackendHealth:
        if not self.engine.is_ready():
            return BackendHealth(healthy=False, detail=self.engine.state.value)
        return await self._http.health()
