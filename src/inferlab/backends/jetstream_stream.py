"""JetStream's answer stream → its samples, and stop sequences applied to the text.

JetStream's ``/v1/generate`` answers ``text/event-stream`` but writes no SSE framing: each message
is ``MessageToJson(DecodeResponse)`` — an indented JSON object, camelCase field names — written one
after the other with nothing between them. ``JsonObjectStream`` splits such a body into its objects
as bytes arrive, with memory bounded by ``max_object_bytes``; ``samples`` reads the generated text
and token count out of one object (``streamContent.samples[0]``, or snake_case field names when
the server preserves proto names). ``StopScanner`` holds back text that may begin a stop sequence,
so a stop string never reaches the client, even split across messages.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from inferlab.backends.http import incomplete_stream, line_too_long, malformed_stream

_DECODER = json.JSONDecoder()
_BLANK = " \t\r\n"


class JsonObjectStream:
    """Concatenated JSON objects, fed in arbitrary blocks; ``feed`` returns the complete ones."""

    def __init__(self, backend: str, max_object_bytes: int) -> None:
        self._backend = backend
        self._max = max_object_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""

    def feed(self, block: bytes) -> list[dict[str, Any]]:
        self._pending += self._utf8.decode(block)
        objects: list[dict[str, Any]] = []
        while True:
            text = self._pending.lstrip(_BLANK)
            if not text:
                self._pending = ""
                return objects
            if text[0] != "{":
                raise malformed_stream(self._backend, "a stream that is not a sequence of JSON objects")
            try:
                value, end = _DECODER.raw_decode(text)
            except json.JSONDecodeError:
                if len(text.encode()) > self._max:
                    raise line_too_long(self._backend, self._max) from None
                self._pending = text  # incomplete: wait for more
                return objects
            objects.append(value)
            self._pending = text[end:]

    def end(self) -> None:
        if self._pending.strip(_BLANK) or self._utf8.decode(b"", final=True):
            raise incomplete_stream(self._backend)


def samples(backend: str, message: dict[str, Any]) -> tuple[str, int] | None:
    """The text and token count of one ``DecodeResponse``; None for one without content."""
    content = message.get("streamContent", message.get("stream_content"))
    if content is None:
        if "initialContent" in message or "initial_content" in message:
            return None
        raise malformed_stream(backend, "a message without streamContent")
    found = content.get("samples") if isinstance(content, dict) else None
    if not isinstance(found, list):
        raise malformed_stream(backend, "streamContent without samples")
    if not found:
        return None
    first = found[0]
    if not isinstance(first, dict):
        raise malformed_stream(backend, "a sample that is not an object")
    text = first.get("text", "")
    ids = first.get("tokenIds", first.get("token_ids", []))
    if not isinstance(text, str) or not isinstance(ids, list):
        raise malformed_stream(backend, "a sample with the wrong field types")
    return text, len(ids)


class StopScanner:
    """Feeds generated text through; ``stopped`` once a stop sequence appears (it is cut off)."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """The text that can be sent now."""
        if not self._stops:
            return text
        if self.stopped:
            return ""
        held = self._held + text
        cut = min((i for i in (held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self._held = True, ""
            return held[:cut]
        keep = max((k for s in self._stops for k in range(1, len(s)) if held.endswith(s[:k])), default=0)
        self._held = held[len(held) - keep:] if keep else ""
        return held[:len(held) - keep]

    def flush(self) -> str:
        """At the end of the stream: what was held back (it turned out not to begin a stop)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
