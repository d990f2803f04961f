"""A stream that was refused before it opened: its first ``anext`` raises why."""

from __future__ import annotations

from inferlab.types import StreamChunk


class RefusedStream:
    __slots__ = ("_error",)

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __aiter__(self) -> RefusedStream:
        return self

    async def __anext__(self) -> StreamChunk:
        raise self._error

    async def aclose(self) -> None:
        return None
