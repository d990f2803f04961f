"""Deterministic text, token counts and embedding vectors produced by the simulator.

Nothing here is a model: generated "tokens" are words from a fixed list, a prompt's token count is
its number of whitespace-separated words, and an embedding is a hash of the input spread over 64
dimensions and normalised to unit length.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

EMBEDDING_DIM = 64

_WORDS = [
    "This", "is", "simulated", "output", "from", "the", "InferLab", "engine", "simulator,", "not", "a",
    "model;", "each", "word", "stands", "for", "one", "generated", "token", "so", "that", "tests", "and",
    "benchmarks", "can", "count", "them.",
]

SIM_TOKENS: tuple[str, ...] = tuple(f" {word}" for word in _WORDS)


def token_text(index: int) -> str:
    return SIM_TOKENS[index % len(SIM_TOKENS)]


def generated_text(count: int) -> str:
    return "".join(token_text(i) for i in range(count))


def count_words(value: Any) -> int:
    """Token count of a prompt: whitespace-split words of a string, list of strings or token ids."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        if value and all(isinstance(item, int) for item in value):
            return len(value)
        return sum(count_words(item) for item in value)
    return 0


def token_id(word: str) -> int:
    """A stable id for a simulated token (a word): what ``/tokenize`` answers."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % 50_000


def message_text(messages: list[Any]) -> str:
    """The text of chat messages as the simulated chat template renders it: every text content
    part, one per line, so that it tokenizes to ``count_message_words(messages)`` tokens."""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            parts += [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        elif isinstance(content, str):
            parts.append(content)
    return "\n".join(parts)


def count_message_words(messages: Any) -> int:
    """Token count of chat messages: the words of every text content part."""
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].split())
        else:
            total += count_words(content)
    return total


def embedding_vector(value: Any) -> list[float]:
    """A unit vector of ``EMBEDDING_DIM`` floats derived from a hash of the input."""
    raw = value.encode() if isinstance(value, str) else repr(value).encode()
    digest = hashlib.blake2b(raw, digest_size=EMBEDDING_DIM).digest()
    vector = [(byte - 127.5) / 127.5 for byte in digest]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def embedding_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format="base64"``: little-endian float32 values, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_inputs(value: Any) -> list[Any] | None:
    """Split an embeddings ``input`` into items: a string, a token-id list, or a list of either."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, int) for item in value):
            return [value]
        if all(isinstance(item, (str, list)) for item in value):
            return list(value)
    return None
