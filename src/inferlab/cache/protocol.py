"""The response-cache interface: opaque keys to cached responses, with a TTL.

A ``CachedResponse`` is what the client received: the JSON body of a whole response, or every SSE
byte of a streamed one (``data: [DONE]`` included), replayed as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class CachedResponse:
    kind: Literal["json", "sse"]
    body: bytes

    def encode(self) -> bytes:
        return (b"j" if self.kind == "json" else b"s") + self.body

    @classmethod
    def decode(cls, raw: bytes) -> CachedResponse:
        return cls("json" if raw[:1] == b"j" else "sse", raw[1:])


class CacheManager(Protocol):
    async def get(self, key: str) -> CachedResponse | None: ...

    async def put(self, key: str, response: CachedResponse, ttl_s: float) -> None: ...

    async def aclose(self) -> None: ...
