"""Send one evaluation request to an OpenAI-compatible server and read text, usage and logprobs.

Non-streaming on purpose: evaluation needs the whole answer and the server's own token counts, not
latency to the first token (``inferlab bench`` measures that). Failures never raise: they come back
as a :class:`ModelReply` with ``error`` set, so one bad request costs one problem, not the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from inferlab.evaluation.suite import ModelReply, ModelRequest

__all__ = ["ModelClient"]

_PATHS = {"chat": "/chat/completions", "completions": "/completions"}


def _chat_logprobs(choice: Mapping[str, Any]) -> dict[str, float] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    first = content[0]
    found = {item["token"]: float(item["logprob"]) for item in first.get("top_logprobs") or []}
    found.setdefault(first["token"], float(first["logprob"]))
    return found


def _completion_logprobs(choice: Mapping[str, Any]) -> dict[str, float] | None:
    logprobs = choice.get("logprobs") or {}
    if logprobs.get("content"):  # llama-server answers the legacy route in the chat shape
        return _chat_logprobs(choice)
    top = logprobs.get("top_logprobs")
    if top and isinstance(top[0], Mapping):
        return {token: float(value) for token, value in top[0].items()}
    tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if tokens and values and values[0] is not None:
        return {tokens[0]: float(values[0])}
    return None


def parse_reply(route: str, body: Mapping[str, Any], seconds: float) -> ModelReply:
    """A completion or chat completion body as a :class:`ModelReply` (first choice)."""
    choice = (body.get("choices") or [{}])[0]
    if route == "chat":
        text = (choice.get("message") or {}).get("content") or ""
        logprobs = _chat_logprobs(choice)
    else:
        text = choice.get("text") or ""
        logprobs = _completion_logprobs(choice)
    usage = body.get("usage") or {}
    return ModelReply(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0), seconds=seconds,
                      first_token_logprobs=logprobs)


def _error_message(status: int, raw: bytes) -> str:
    try:
        error = orjson.loads(raw).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    message = error.get("message") if isinstance(error, dict) else raw[:200].decode("utf-8", "replace")
    return f"HTTP {status}: {message}"


class ModelClient:
    """One HTTP session to ``base_url`` (``.../v1``) for the whole run; use as an async context manager."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, model: str, request: ModelRequest) -> ModelReply:
        if self._session is None:
            raise RuntimeError("ModelClient is used outside 'async with'")
        body = {**request.body, "model": model}
        started = time.perf_counter()
        try:
            async with self._session.post(self.base_url + _PATHS[request.route], data=orjson.dumps(body)) as response:
                raw = await response.read()
                seconds = time.perf_counter() - started
                if response.status != 200:
                    return ModelReply(seconds=seconds, error=_error_message(response.status, raw))
                return parse_reply(request.route, orjson.loads(raw), seconds)
        except TimeoutError:
            return ModelReply(seconds=time.perf_counter() - started, error="timeout")
        except aiohttp.ClientError as exc:
            return ModelReply(seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError) as exc:
            return ModelReply(seconds=time.perf_counter() - started, error=f"malformed response: {type(exc).__name__}")
