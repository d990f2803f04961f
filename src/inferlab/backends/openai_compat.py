"""Any engine that speaks the OpenAI HTTP API: vLLM, SGLang, llama-server, TGI (Messages API),
LM Studio, llama-cpp-python's server and hosted OpenAI-compatible services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from inferlab.backends.http import raise_for_engine_status, sse_data_lines, translate_client_error
from inferlab.errors import EngineRejected, UpstreamError
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, RequestKind, StreamChunk, Usage

_PATHS = {
    RequestKind.CHAT: "/chat/completions",
    RequestKind.COMPLETION: "/completions",
    RequestKind.EMBEDDING: "/embeddings",
}


class OpenAICompatibleBackend:
    """One replica reached at ``base_url`` (the URL that ends in ``/v1``)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        served_name: str | None = None,
        api_key: str | None = None,
        health_url: str | None = None,
        close_after_stream: bool = False,
    ) -> None:
        """``close_after_stream``: llama-server drops a kept-alive connection after a streamed
        response, so reusing it fails the next request; such engines get a fresh connection
        for each stream (``Connection: close``), which costs ~0.1 ms on loopback."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._served_name = served_name
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._health_url = health_url or self.base_url + "/models"
        self._stream_headers = {**self._headers, "Connection": "close"} if close_after_stream else self._headers

    def is_available(self) -> bool:
        return True

    def _engine_body(self, request: InferenceRequest, *, stream: bool) -> bytes:
        body = dict(request.body)
        if self._served_name is not None:
            body["model"] = self._served_name
        if stream:
            body["stream"] = True
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True  # the gateway always meters, whatever the client asked
            body["stream_options"] = options
        else:
            body.pop("stream_options", None)
            body["stream"] = False
        return orjson.dumps(body)

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        return await self._post_json(request)

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        return await self._post_json(request)

    async def _post_json(self, request: InferenceRequest) -> InferenceResponse:
        url = self.base_url + _PATHS[request.kind]
        try:
            async with self._session.post(
                url, data=self._engine_body(request, stream=False),
                headers={**self._headers, "x-request-id": request.request_id},
            ) as response:
                await raise_for_engine_status(self.name, response)
                raw = await response.read()
                body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"engine {self.name} sent a body that is not JSON") from exc
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)
        if not isinstance(body, dict):
            raise UpstreamError(f"engine {self.name} sent an unexpected response shape")
        usage = Usage.from_openai(body.get("usage"))
        if body.get("model") == request.model:
            return InferenceResponse(body=body, usage=usage, raw=raw)
        body["model"] = request.model
        return InferenceResponse(body=body, usage=usage)

    async def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        url = self.base_url + _PATHS[request.kind]
        try:
            async with self._session.post(
                url, data=self._engine_body(request, stream=True),
                headers={**self._stream_headers, "x-request-id": request.request_id},
            ) as response:
                await raise_for_engine_status(self.name, response)
                # Once a parsed chunk shows the engine names the model as the client did, chunks
                # without usage or error are forwarded as the engine's bytes, unparsed.
                verbatim = False
                async for data in sse_data_lines(response):
                    if data == b"[DONE]":
                        return
                    if verbatim and b'"usage"' not in data and b'"error"' not in data:
                        yield StreamChunk(raw=data)
                        continue
                    chunk = self._chunk(request, data)
                    verbatim = chunk.raw is not None
                    yield chunk
        except Exception as exc:  # noqa: BLE001 - translated in one place
            translate_client_error(self.name, exc)

    def _chunk(self, request: InferenceRequest, data: bytes) -> StreamChunk:
        try:
            chunk: dict[str, Any] = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"engine {self.name} sent a malformed stream event") from exc
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            status = error.get("code") if isinstance(error, dict) else None
            if isinstance(status, int) and 400 <= status < 500:
                raise EngineRejected(f"engine rejected the request: {message}", status=status)
            raise UpstreamError(f"engine {self.name} failed mid-stream: {message}")
        usage = Usage.from_openai(chunk.get("usage"))
        has_content = bool(chunk.get("choices"))
        if chunk.get("model") == request.model and usage is None:
            return StreamChunk(usage=usage, has_content=has_content, raw=data)
        chunk["model"] = request.model
        return StreamChunk(data=chunk, usage=usage, has_content=has_content)

    async def health(self) -> BackendHealth:
        try:
            async with self._session.get(self._health_url, headers=self._headers) as response:
                return BackendHealth(healthy=response.status == 200, detail=f"HTTP {response.status}")
        except Exception as exc:  # noqa: BLE001 - a failed probe is an answer, not an error
            return BackendHealth(healthy=False, detail=type(exc).__name__)
