"""What one request really used, for everyone who settles or reports it after the fact.

The engine's own usage when it came; for a stream cut short before it, the prompt estimated from
the body size plus one token per chunk forwarded; for a request that failed before the engine
produced anything (or was answered from the cache), nothing. A request whose client left before
the answer ended (``cut_short``) is charged its estimated prompt plus one token per chunk
forwarded, even before the first byte or in a non-streamed request: the engine may have done the
prefill, the gateway cannot know, and leaving early must not make prefill free.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 4


def estimate_prompt_tokens(body_bytes: int) -> int:
    """A cheap upper-ish estimate of the prompt's tokens from the body's size (~4 bytes a token)."""
    return body_bytes // BYTES_PER_TOKEN + 1


class UsageMeter:
    __slots__ = ("chunks", "known", "prompt_estimate")

    def __init__(self, prompt_estimate: int = 0) -> None:
        self.prompt_estimate = prompt_estimate
        self.known: tuple[int, int] | None = None
        self.chunks = 0

    def engine_reported(self, prompt: int, completion: int) -> None:
        self.known = (prompt, completion)

    def nothing(self) -> None:
        """No engine work was done (refused, failed before any output, or a cache hit)."""
        self.known = (0, 0)

    def cut_short(self) -> None:
        """The client left (or the request was cancelled) before the engine's usage arrived."""
        if self.known is None:
            self.known = (self.prompt_estimate, self.chunks)

    def settled(self) -> tuple[int, int]:
        """(prompt, completion) tokens to charge."""
        if self.known is not None:
            return self.known
        return (self.prompt_estimate, self.chunks) if self.chunks else (0, 0)
