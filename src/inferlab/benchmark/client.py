"""Send one benchmark request and time it: TTFT, inter-token gaps, end-to-end latency, tokens.

Server-Sent Events are parsed line by line here (no SSE library) to keep the client cheap: a
content chunk is a ``data:`` line whose first choice carries text. Output tokens come from the
usage chunk (``stream_options.include_usage``), else from the number of content chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from inferlab.benchmark.workload import PreparedRequest

_DATA = b"data:"
_DONE = b"[DONE]"


@dataclass(slots=True)
class RequestOutcome:
    """Timings (seconds) and sizes of one request; ``error`` is None on success."""

    success: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    e2el: float = 0.0
    itl: list[float] = field(default_factory=list)
    error: str | None = None


def _chunk_text(chunk: dict[str, Any]) -> str | None:
    choices = chunk.get("choices")
    if not choices:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    text = (delta.get("content") or delta.get("reasoning_content")) if delta else choice.get("text")
    return text if isinstance(text, str) else None


def _error_reason(chunk: dict[str, Any]) -> str:
    error = chunk.get("error")
    if isinstance(error, dict):
        return f"stream error: {error.get('type') or error.get('code') or 'unknown'}"
    return "stream error"


def _apply_usage(outcome: RequestOutcome, usage: Any) -> bool:
    if not isinstance(usage, dict) or not isinstance(usage.get("completion_tokens"), int):
        return False
    outcome.output_tokens = usage["completion_tokens"]
    if isinstance(usage.get("prompt_tokens"), int):
        outcome.input_tokens = usage["prompt_tokens"]
    return True


async def _read_stream(response: aiohttp.ClientResponse, outcome: RequestOutcome, start: float) -> None:
    chunks = 0
    last = start
    have_usage = False
    async for raw in response.content:
        if not raw.startswith(_DATA):
            continue
        payload = raw[5:].strip()
        if payload == _DONE:
            outcome.success = True
            break
        chunk = orjson.loads(payload)
        if "error" in chunk:
            outcome.error = _error_reason(chunk)
            return
        if _chunk_text(chunk):
            now = time.perf_counter()
            if chunks:
                outcome.itl.append(now - last)
            else:
                outcome.ttft = now - start
            last = now
            chunks += 1
        have_usage = _apply_usage(outcome, chunk.get("usage")) or have_usage
    outcome.e2el = time.perf_counter() - start
    if not outcome.success:
        outcome.error = "stream ended without [DONE]"
        return
    if not chunks:
        outcome.ttft = outcome.e2el
    if not have_usage:
        outcome.output_tokens = chunks


async def _read_body(response: aiohttp.ClientResponse, outcome: RequestOutcome, start: float) -> None:
    body = orjson.loads(await response.read())
    outcome.e2el = outcome.ttft = time.perf_counter() - start
    if not _apply_usage(outcome, body.get("usage")):
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = message.get("content") or choice.get("text") or ""
        outcome.output_tokens = len(text.split())
    outcome.success = True


async def send_request(
    session: aiohttp.ClientSession, url: str, request: PreparedRequest, *, stream: bool
) -> RequestOutcome:
    """POST one prepared body and measure it; failures are recorded, never raised."""
    outcome = RequestOutcome(input_tokens=request.prompt_words)
    start = time.perf_counter()
    try:
        async with session.post(url, data=request.body) as response:
            if response.status != 200:
                await response.read()
                outcome.error = f"HTTP {response.status}"
            elif stream:
                await _read_stream(response, outcome, start)
            else:
                await _read_body(response, outcome, start)
    except TimeoutError:
        outcome.error = "timeout"
    except aiohttp.ClientError as exc:
        outcome.error = type(exc).__name__
    except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
        outcome.error = f"malformed response: {type(exc).__name__}"
    if outcome.error is not None:
        outcome.success = False
        outcome.e2el = time.perf_counter() - start
    return outcome


def make_session(*, api_key: str | None, timeout: float, keepalive: bool = True) -> aiohttp.ClientSession:
    """One session for the whole run: unlimited pooled keep-alive connections (or, with
    ``keepalive=False``, a fresh connection per request), JSON headers."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    connector = (
        aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        if keepalive else aiohttp.TCPConnector(limit=0, force_close=True)
    )
    return aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    )

