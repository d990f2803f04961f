"""How long one attempt on a replica may take before the gateway gives up on it and fails over.

A replica that accepts a request and never answers must cost one bounded wait, not the upstream
read timeout (minutes). The bound follows what the engine has to do for this request, with
deliberately pessimistic speeds, so a slow but healthy engine is not mistaken for a hung one:

    first byte (stream)        floor_s + prompt_tokens / prefill_tokens_per_s
    whole answer (non-stream)  first byte + completion_tokens / decode_tokens_per_s
    between two chunks         first byte (some engines send their first chunk before prefill)

Prompt tokens are estimated from the prompt's characters (``CHARS_PER_TOKEN``, erring towards
more tokens); completion tokens are ``max_tokens`` × ``n``, else the model's context size. A value
set explicitly in the model's ``retry:`` settings wins over the derived one. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inferlab.router.retry import RetryPolicy

CHARS_PER_TOKEN = 3  # most tokenisers average ~4 characters a token in English; 3 errs long
MEDIA_TOKENS = 1024  # an image or audio part (a data: URL's length says nothing about its tokens)
_PROMPT_FIELDS = ("messages", "prompt", "input", "suffix", "tools", "functions")


@dataclass(frozen=True, slots=True)
class TimeoutModel:
    """The expected speed of a model's engines, pessimistic on purpose (per model in the settings)."""

    floor_s: float = 20.0  # connection, the engine's own queue, its first decode step
    prefill_tokens_per_s: float = 100.0
    decode_tokens_per_s: float = 5.0
    context_tokens: int = 4096  # completion budget of a request without max_tokens


@dataclass(frozen=True, slots=True)
class AttemptDeadlines:
    first_byte_s: float  # a streamed attempt, until its first chunk
    whole_s: float  # a non-streamed attempt, the whole answer
    idle_s: float  # a stream, between two chunks


def prompt_tokens(body: dict[str, Any]) -> int:
    """An estimate of the prompt's tokens from its text, without a tokeniser (iterative: a deeply
    nested body cannot exhaust the stack)."""
    plain = _plain_chat_chars(body)
    if plain is not None:
        return plain // CHARS_PER_TOKEN + 1
    chars = 0
    tokens = 0
    stack: list[Any] = [body.get(name) for name in _PROMPT_FIELDS]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.startswith("data:"):
                tokens += MEDIA_TOKENS
            else:
                chars += len(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            if value and isinstance(value[0], int):  # token ids
                tokens += len(value)
            else:
                stack.extend(value)
    return tokens + chars // CHARS_PER_TOKEN + 1


def _plain_chat_chars(body: dict[str, Any]) -> int | None:
    """The usual chat body's characters, counted in one pass: messages only, each a dict of
    strings with no media; None for anything else (the general walk counts it)."""
    messages = body.get("messages")
    if type(messages) is not list or any(name in body for name in _PROMPT_FIELDS[1:]):
        return None
    chars = 0
    for message in messages:
        if type(message) is not dict:
            return None
        for value in message.values():
            if type(value) is not str or value.startswith("data:"):
                return None
            chars += len(value)
    return chars


def completion_tokens(body: dict[str, Any], context_tokens: int) -> int:
    """The most tokens the request may generate: 0 for embeddings."""
    if "input" in body and "messages" not in body and "prompt" not in body:
        return 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    n = body.get("n") or 1
    if not isinstance(limit, int) or limit < 1:
        limit = context_tokens
    return limit * (n if isinstance(n, int) and n > 0 else 1)


def attempt_deadlines(policy: RetryPolicy, model: TimeoutModel, body: dict[str, Any],
                      prompt: int | None = None) -> AttemptDeadlines:
    """``prompt``: the body's ``prompt_tokens``, when the caller has it already."""
    first_byte = model.floor_s + (prompt if prompt is not None else prompt_tokens(body)) / model.prefill_tokens_per_s
    if policy.first_byte_timeout_s is not None:
        first_byte = policy.first_byte_timeout_s
    whole = policy.attempt_timeout_s
    if whole is None:
        whole = first_byte + completion_tokens(body, model.context_tokens) / model.decode_tokens_per_s
    idle = policy.stream_idle_timeout_s if policy.stream_idle_timeout_s is not None else first_byte
    return AttemptDeadlines(first_byte, whole, idle)
