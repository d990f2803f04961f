"""What a call's answer said, kept for counting its tokens when the engine reports no usage.

A stream's events are taken as the client gets them (a tap on the call: one list append per
chunk, nothing parsed). Only a long stream is parsed as it goes — once more than ``compact_bytes``
of events are held — down to the text of each choice, so memory stays near the text's size, not
the SSE framing's. A whole answer gives its choices' text directly.

The text of a choice is everything the model generated for it: the content, the reasoning
(``reasoning_content``) and the tool calls' names and arguments, kept apart.
"""

from __future__ import annotations

from typing import Any

import orjson

COMPACT_BYTES = 64 * 1024


def _generated(part: dict[str, Any]) -> list[tuple[str, str]]:
    """The generated text of one choice's ``delta`` or ``message`` (or a completion choice), by
    part: each part is counted on its own (tokens never straddle content and reasoning)."""
    texts = [(name, value) for name in ("content", "reasoning_content", "text")
             if isinstance(value := part.get(name), str) and value]
    for position, call in enumerate(part.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            slot = f"tool{call.get('index', position)}"
            texts += [(f"{slot}.{name}", value) for name in ("name", "arguments")
                      if isinstance(value := function.get(name), str) and value]
    return texts


class Transcript:
    __slots__ = ("_compact_bytes", "_events", "_size", "_texts")

    def __init__(self, compact_bytes: int = COMPACT_BYTES) -> None:
        self._compact_bytes = compact_bytes
        self._events: list[bytes] = []
        self._size = 0
        self._texts: dict[tuple[int, str], list[str]] = {}

    def __call__(self, event: bytes) -> None:
        """The tap: one SSE event (or a run of them) as sent."""
        self._events.append(event)
        self._size += len(event)
        if self._size > self._compact_bytes:
            self._compact()

    def add_choices(self, body: dict[str, Any]) -> None:
        """A whole answer's choices (``message`` for chat, ``text`` for completions)."""
        for choice in body.get("choices") or ():
            if isinstance(choice, dict):
                self._add_choice(choice, choice.get("message"))

    def texts(self) -> list[str]:
        """The generated texts: one per choice and part (content, reasoning, each tool call's name
        and arguments), in choice order."""
        self._compact()
        return ["".join(self._texts[key]) for key in sorted(self._texts)]

    def _add_choice(self, choice: dict[str, Any], part: object) -> None:
        index = choice.get("index", 0)
        if not isinstance(index, int):
            return
        for name, text in _generated(part if isinstance(part, dict) else choice):
            self._texts.setdefault((index, name), []).append(text)

    def _compact(self) -> None:
        events, self._events, self._size = self._events, [], 0
        for block in events:
            for line in block.split(b"\n"):
                if line[:6] != b"data: " or line[6:7] != b"{":
                    continue  # blank lines, [DONE]
                try:
                    chunk = orjson.loads(line[6:])
                except orjson.JSONDecodeError:
                    continue
                for choice in chunk.get("choices") or ():
                    if isinstance(choice, dict):
                        self._add_choice(choice, choice.get("delta"))
