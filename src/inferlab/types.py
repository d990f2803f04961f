"""InferLab's own request/response types, shared by the API, the router and the backends.

Bodies stay OpenAI-shaped dicts (the wire format every engine adapter converts to and from);
these small types carry what the gateway itself needs to know about them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import orjson


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
    priority: int = 0  # the priority class (0 low … 3 critical): engines with priority scheduling get it


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the engine served from its prompt cache, when it says so

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not usage:
            return None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(cached or 0),
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

    def encoded(self) -> bytes:
        """The bytes to send: the engine's own when nothing changed, else ``body`` encoded once."""
        if self.raw is None:
            self.raw = orjson.dumps(self.body)
        return self.raw


class StreamChunk:
    """One OpenAI-shaped streamed chunk (``chat.completion.chunk`` or ``text_completion``).

    ``usage`` is set on the chunk that carries the engine's usage figures. A chunk may arrive as
    the engine's bytes (``raw``) when the gateway has nothing to change in it; ``data`` parses
    them on first use, and ``encoded()`` gives the bytes to send, untouched when nobody looked.
    Several plain chunks the gateway forwards unchanged may travel as one ``framed`` chunk: their
    SSE events (``data: ...\n\n`` each), ready to write, and how many there are (``events``).
    """

    __slots__ = ("_data", "events", "framed", "has_content", "raw", "usage")

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        usage: Usage | None = None,
        has_content: bool = True,
        raw: bytes | None = None,
        *,
        framed: bytes | None = None,
        events: int = 1,
    ) -> None:
        if data is None and raw is None and framed is None:
            raise ValueError("a StreamChunk needs data, raw bytes or framed events")
        self._data = data
        self.raw = raw
        self.usage = usage
        self.has_content = has_content
        self.framed = framed
        self.events = events

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            if self.raw is None:
                raise ValueError("framed events are forwarded as they are, not parsed")
            self._data = orjson.loads(self.raw)
        return self._data

    def encoded(self) -> bytes:
        if self._data is None and self.raw is not None:
            return self.raw
        return orjson.dumps(self.data)

    def event(self) -> bytes:
        """The chunk as SSE bytes: one event, or the framed run."""
        if self.framed is not None:
            return self.framed
        return b"data: " + self.encoded() + b"\n\n"


class ChunkSink(Protocol):
    """Where a stream may hand its plain chunks as they arrive, with no task switch per chunk.

    A stream that supports it (``forward_to``, duck-typed like ``watch_idle``) calls ``forward``
    as the engine connection reads each block (``EngineResponse.push``), once its consumer is past
    the first chunk. ``forward``
    takes framed SSE events (``StreamChunk.framed``) and answers ``FORWARDED``, ``BEHIND`` (taken,
    but the client is behind: the stream stops pushing and awaits ``drained`` in the consumer's
    task) or ``REFUSED`` (not taken: the stream queues it for the consumer's own loop, which
    raises what stopped it). Anything that is not a plain chunk always goes through that loop.
    """

    def forward(self, framed: bytes, events: int) -> int: ...

    async def drained(self) -> None: ...


FORWARDED, BEHIND, REFUSED = 0, 1, 2  # ``ChunkSink.forward``'s answers


class FirstSink(Protocol):
    """Where a stream may relay its first event the moment the engine sends it, from the engine
    connection's callback, before the task that opened the stream runs again.

    A stream that supports it (``relay_first``, duck-typed like ``forward_to``) offers ``first``
    its first block of framed events when that is exactly what its first chunk will render to
    (plain chunks, the first naming the model as the client did). ``first`` answers whether the
    client has them now; the stream then hands them on as its first chunk, and whoever renders it
    does not send it twice (``sent``). Once ``sent``, the stream is the client's: no other replica
    may take it over.
    """

    @property
    def sent(self) -> bool: ...

    def first(self, framed: bytes) -> bool: ...


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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: an authenticated key's owner, or an anonymous client address.

    Filled once by the API (from the auth middleware's principal, or from the peer address when
    authentication is off); every request step reads it from the call, never from HTTP.
    """

    tenant_id: str = "default"
    user_id: str | None = None
    key_id: str | None = None
    role: str | None = None
    address: str = "unknown"
    models: frozenset[str] | None = None  # the models the credential may use; None: every model

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def subject(self) -> str:
        """The narrowest thing a request counts against: the key, else the user, else the address."""
        if self.key_id:
            return self.key_id
        if self.user_id:
            return "user:" + self.user_id
        return "ip:" + self.address

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models
