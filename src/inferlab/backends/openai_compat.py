"""Any engine that speaks the OpenAI HTTP API: vLLM, SGLang, llama-server, TGI (Messages API),
LM Studio, llama-cpp-python's server and hosted OpenAI-compatible services."""

from __future__ import annotations

import orjson

from inferlab.backends.engine_client import EngineClient
from inferlab.backends.engine_errors import CREDENTIAL_STATUSES
from inferlab.backends.http import (
    DEFAULT_MAX_STREAM_LINE_BYTES,
    raise_for_engine_status,
    translate_client_error,
)
from inferlab.backends.openai_stream import EngineChunkStream
from inferlab.errors import UpstreamError
from inferlab.types import BackendHealth, InferenceRequest, InferenceResponse, RequestKind, Usage

MAX_HEALTH_BODY = 64 * 1024
_PATHS = {
    RequestKind.CHAT: "/chat/completions",
    RequestKind.COMPLETION: "/completions",
    RequestKind.EMBEDDING: "/embeddings",
}


TOP_CLASS = 3  # critical


def engine_priority(priority_class: int) -> int:
    """vLLM's ``priority`` for a class: lower is served earlier there (critical 0 … low 3)."""
    return TOP_CLASS - min(max(priority_class, 0), TOP_CLASS)


class OpenAICompatibleBackend:
    """One replica reached at ``base_url`` (the URL that ends in ``/v1``)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        client: EngineClient,
        *,
        served_name: str | None = None,
        api_key: str | None = None,
        health_url: str | None = None,
        close_after_stream: bool = False,
        max_line_bytes: int = DEFAULT_MAX_STREAM_LINE_BYTES,
        forward_request_id: bool = True,
        send_priority: bool = False,
    ) -> None:
        """``close_after_stream``: llama-server drops a kept-alive connection after a streamed
        response, so reusing it fails the next request; such engines get a fresh connection
        for each stream (``Connection: close``), which costs ~0.1 ms on loopback.
        ``max_line_bytes``: the longest stream line accepted (``upstream.max_stream_line_bytes``).
        ``forward_request_id``: send the gateway's request id as ``x-request-id`` (off for
        llama-cpp-python's server, which answers 400 to any id that is not a UUID).
        ``send_priority``: set the body's ``priority`` to the request's class for an engine that
        schedules by it (vLLM ``--scheduling-policy priority``, where lower goes earlier: critical 0,
        high 1, normal 2, low 3), replacing any the client sent. Off, the body passes as it came."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._served_name = served_name
        self._headers = {"Content-Type": "application/json"}
        self._secrets = (api_key,)  # never logged, even when an engine echoes it
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._health_url = health_url or self.base_url + "/models"
        self._stream_headers = {**self._headers, "Connection": "close"} if close_after_stream else self._headers
        self._forward_request_id = forward_request_id
        self._send_priority = send_priority
        self._max_line_bytes = max_line_bytes

    def _with_request_id(self, headers: dict[str, str], request: InferenceRequest) -> dict[str, str]:
        return {**headers, "x-request-id": request.request_id} if self._forward_request_id else headers

    def is_available(self) -> bool:
        return True

    def _engine_body(self, request: InferenceRequest, *, stream: bool) -> bytes:
        body = dict(request.body)
        if self._served_name is not None:
            body["model"] = self._served_name
        if self._send_priority:
            body["priority"] = engine_priority(request.priority)
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
            async with await self._client.request(
                "POST", url, self._engine_body(request, stream=False), self._with_request_id(self._headers, request)
            ) as response:
                await raise_for_engine_status(self.name, response, request.request_id, self._secrets)
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

    def stream(self, request: InferenceRequest) -> EngineChunkStream:
        """The engine's chunks, up to ``[DONE]`` (``openai_stream`` says what is accepted); the
        request is sent on the first ``anext``. Close it with ``aclose()``."""
        return EngineChunkStream(
            self._client, self.base_url + _PATHS[request.kind], self._engine_body(request, stream=True),
            self._with_request_id(self._stream_headers, request),
            backend=self.name, request=request, max_line_bytes=self._max_line_bytes, secrets=self._secrets,
        )

    async def health(self) -> BackendHealth:
        try:
            async with await self._client.request("GET", self._health_url, headers=self._headers) as response:
                status = response.status
                await response.read(MAX_HEALTH_BODY)
                if status in CREDENTIAL_STATUSES:
                    return BackendHealth(healthy=False, detail=f"engine rejected the gateway's credentials (HTTP {status})")
                return BackendHealth(healthy=status == 200, detail=f"HTTP {status}")
        except Exception as exc:  # noqa: BLE001 - a failed probe is an answer, not an error
            return BackendHealth(healthy=False, detail=type(exc).__name__)
