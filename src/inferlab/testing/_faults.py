"""Malformed streams on cue: what the simulator writes when ``stream_fault`` is scripted.

The fault comes after ``stream_fault_after`` token chunks. Faults that damage one event (bad JSON,
an error event, an unknown event, an over-long line) are followed by the rest of a normal stream,
``[DONE]`` included, so a test can tell that whoever reads the stream stopped at the fault.

    fault           SSE (OpenAI front end)                          NDJSON (Ollama front end)
    invalid_json    half a chunk object: ``data: {"id":...,"cho``   half an event object
    not_json        ``data: engine hiccup``                         ``engine hiccup``
    error_event     ``data: {"error": {...}}``                      ``{"error": "..."}``
    object_error    ``data: {"object": "error", ...}`` (vLLM)       —
    event_error     ``event: error`` + ``data: {"message": ...}``   —
    unknown_event   ``event: progress`` + a well-formed chunk       —
    long_line       a well-formed chunk, its JSON ``fault_line_bytes`` long   an event of that size
    truncate        the body ends cleanly: no finish, no ``[DONE]``  the body ends: no ``done: true``
    cut_line        the body ends in the middle of a chunk's line   the same
    keepalive       benign: a ``: ping`` comment, ``id:``, ``retry:``  —
    no_done         benign: finish and usage, but no ``[DONE]``     —

A fault a protocol cannot express (a ``—`` above) is answered with a 500 by that front end, so a
test never passes on a fault that was not sent.
"""

from __future__ import annotations

from typing import Any

import orjson

SSE_FAULTS = frozenset({
    "invalid_json", "not_json", "error_event", "object_error", "event_error", "unknown_event",
    "long_line", "truncate", "cut_line", "keepalive", "no_done",
})
NDJSON_FAULTS = frozenset({"invalid_json", "not_json", "error_event", "long_line", "truncate", "cut_line"})
STREAM_FAULTS = SSE_FAULTS | NDJSON_FAULTS

ENDS_STREAM = frozenset({"truncate", "cut_line"})  # nothing is written after these
FAILURE_MESSAGE = "simulated engine failure mid-stream"


def _padded(event: dict[str, Any], text_field: tuple[str | int, ...], size: int) -> bytes:
    """``event`` with the text at ``text_field`` padded so that its JSON is ``size`` bytes (or as
    small as it gets)."""
    target: Any = event
    for key in text_field[:-1]:
        target = target[key]
    target[text_field[-1]] = ""
    target[text_field[-1]] = "x" * max(0, size - len(orjson.dumps(event)))
    return orjson.dumps(event)


def sse_fault(fault: str, chunk: dict[str, Any], text_field: tuple[str | int, ...], line_bytes: int) -> bytes:
    """The bytes of ``fault`` in an SSE stream; ``chunk`` is a well-formed chunk to damage or wrap."""
    encoded = orjson.dumps(chunk)
    if fault == "invalid_json":
        return b"data: " + encoded[: len(encoded) // 2] + b"\n\n"
    if fault == "not_json":
        return b"data: engine hiccup\n\n"
    if fault == "error_event":
        error = {"message": FAILURE_MESSAGE, "type": "server_error", "param": None, "code": 500}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    if fault == "object_error":
        error = {"object": "error", "message": FAILURE_MESSAGE, "type": "InternalServerError", "param": None,
                 "code": 500}
        return b"data: " + orjson.dumps(error) + b"\n\n"
    if fault == "event_error":
        return b"event: error\ndata: " + orjson.dumps({"message": FAILURE_MESSAGE}) + b"\n\n"
    if fault == "unknown_event":
        return b"event: progress\ndata: " + encoded + b"\n\n"
    if fault == "long_line":
        return b"data: " + _padded(chunk, text_field, line_bytes) + b"\n\n"
    if fault == "cut_line":
        return b"data: " + encoded[: len(encoded) // 2]
    if fault == "keepalive":
        return b": ping\n\nid: 7\nretry: 1000\n\n"
    return b""  # truncate, no_done: what matters is what is not written


def ndjson_fault(
    fault: str, event: dict[str, Any], text_field: tuple[str | int, ...], line_bytes: int
) -> bytes:
    """The bytes of ``fault`` in an NDJSON stream; ``event`` is a well-formed event to damage."""
    encoded = orjson.dumps(event)
    if fault == "invalid_json":
        return encoded[: len(encoded) // 2] + b"\n"
    if fault == "not_json":
        return b"engine hiccup\n"
    if fault == "error_event":
        return orjson.dumps({"error": FAILURE_MESSAGE}) + b"\n"
    if fault == "long_line":
        return _padded(event, text_field, line_bytes) + b"\n"
    if fault == "cut_line":
        return encoded[: len(encoded) // 2]
    return b""  # truncate
