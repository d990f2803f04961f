"""What one request really used, for everyone who settles or reports it after the fact: the rate
limiter's quotas, the metrics, the usage event (``inferlab.metering``) — one set of numbers.

In order of preference: the engine's own usage; counted with the model's tokenizer when the engine
gave none (a stream cut short, an engine that does not report usage; ``counted``, filled by the
metering step before anyone settles); nothing when no engine work was done (refused, answered
from the cache). Only when none of these is known — metering off, or the tokenizer did not answer
in time — an estimate: the prompt from the body size plus one token per chunk forwarded
(``cut_short``), charged even before the first byte, since the engine may have done the prefill
and leaving early must not make it free.
"""

from __future__ import annotations

from typing import Literal

BYTES_PER_TOKEN = 4

UsageSource = Literal["engine", "tokenizer", "estimate", "none"]


def estimate_prompt_tokens(body_bytes: int) -> int:
    """A cheap upper-ish estimate of the prompt's tokens from the body's size (~4 bytes a token)."""
    return body_bytes // BYTES_PER_TOKEN + 1


class UsageMeter:
    __slots__ = ("cached", "chunks", "known", "prompt_estimate", "source")

    def __init__(self, prompt_estimate: int = 0) -> None:
        self.prompt_estimate = prompt_estimate
        self.known: tuple[int, int] | None = None
        self.source: UsageSource | None = None  # where ``known`` came from
        self.cached = 0  # prompt tokens the engine served from its cache (its own report)
        self.chunks = 0

    def engine_reported(self, prompt: int, completion: int, cached: int = 0) -> None:
        self.known = (prompt, completion)
        self.cached = cached
        self.source = "engine"

    def counted(self, prompt: int, completion: int) -> None:
        """Counted with the model's tokenizer (the engine gave no usage)."""
        self.known = (prompt, completion)
        self.source = "tokenizer"

    def nothing(self) -> None:
        """No engine work was done (refused, failed before any output, or a cache hit)."""
        self.known = (0, 0)
        self.source = "none"

    def cut_short(self) -> None:
        """The client left (or the request was cancelled) and nothing better is known."""
        if self.known is None:
            self.known = (self.prompt_estimate, self.chunks)
            self.source = "estimate"

    def settled(self) -> tuple[int, int]:
        """(prompt, completion) tokens to charge."""
        if self.known is not None:
            return self.known
        return (self.prompt_estimate, self.chunks) if self.chunks else (0, 0)

    def settled_source(self) -> UsageSource:
        if self.source is not None:
            return self.source
        return "estimate" if self.chunks else "none"
