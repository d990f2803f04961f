"""InferLab's own request/response types, shared by the API, the router and the backends.

Bodies stay OpenAI-shaped dicts (the wire format every engine adapter converts to and from);
these small types carry what the gateway itself needs to know about them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


class RequestKind(str, Enum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"


@dataclass(slots=True)
class InferenceRequest:
    """A validated OpenAI request on its way to a backend.

    ``body`` is the client's JSON with unknown fields kept (they pass through to the engine);
    ``model`` is the public model name the client asked for.
    """

    kind: RequestKind
    model: str
    body: dict[str, Any]
    request_id: str
    stream: bool = False
    include_usage: bool = False


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def to_openai(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class InferenceResponse:
    """A whole (non-streamed) OpenAI-shaped response from a backend.

    ``raw`` is the engine's own encoding of ``body`` when it can go to the client unchanged.
    """

    body: dict[str, Any]
    usage: Usage | None
    raw: bytes | None = None


@dataclass(slots=True)
class StreamChunk:
    """One OpenAI-shaped streamed chunk (``chat.completion.chunk`` or ``text_completion``).

    ``usage`` is set on the chunk that carries the engine's usage figures.
    """

    data: dict[str, Any]
    usage: Usage | None = None
    has_content: bool = True


@dataclass(slots=True)
class BackendHealth:
    healthy: bool
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class InferenceBackend(Protocol):
    """One engine endpoint (a replica) speaking some protocol, normalised to InferLab's types.

    Adapters convert every foreign error into an ``inferlab.errors.InferLabError``:
    connection failures and 5xx → ``UpstreamError`` (502), engine 4xx → ``EngineRejected``,
    timeouts → ``UpstreamTimeout`` (504).
    """

    name: str

    def is_available(self) -> bool:
        """Cheap, synchronous: may this replica take a request right now?"""
        ...

    async def complete(self, request: InferenceRequest) -> InferenceResponse:
        """Chat or text completion, non-streamed."""
        ...

    def stream(self, request: InferenceRequest) -> AsyncIterator[StreamChunk]:
        """Chat or text completion, streamed chunk by chunk as the engine sends them."""
        ...

    async def embed(self, request: InferenceRequest) -> InferenceResponse:
        ...

    async def health(self) -> BackendHealth:
        ...
