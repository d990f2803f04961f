"""What one serving benchmark run does: target, workload shape and load pattern."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Endpoint = Literal["chat", "completions"]

ENDPOINT_PATHS: dict[str, str] = {"chat": "/chat/completions", "completions": "/completions"}


class BenchmarkConfigError(ValueError):
    """A benchmark option is out of range or inconsistent."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """Options of one run; the names follow ``inferlab bench``'s command-line options.

    ``concurrency`` caps requests in flight; ``request_rate`` spaces arrivals as a Poisson process
    (``math.inf``: all at once). Both may be combined, as in ``vllm bench serve``.
    """

    base_url: str
    model: str
    api_key: str | None = None
    endpoint: Endpoint = "chat"
    num_prompts: int = 100
    concurrency: int | None = None
    request_rate: float = math.inf
    stream: bool = True
    max_tokens: int = 128
    temperature: float | None = None  # sent when set; 0 makes requests cacheable by a gateway's response cache
    prompt_words: int = 32
    prompt_file: Path | None = None
    warmup: int = 0
    percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)
    timeout: float = 300.0
    label: str | None = None
    save_detailed: bool = False
    seed: int = 0
    keepalive: bool = True  # False: a new connection per request (llama-server drops kept-alive streams)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise BenchmarkConfigError(f"base URL must start with http:// or https://: {self.base_url!r}")
        if self.endpoint not in ENDPOINT_PATHS:
            raise BenchmarkConfigError(f"endpoint must be 'chat' or 'completions', not {self.endpoint!r}")
        if self.num_prompts < 1:
            raise BenchmarkConfigError("num_prompts must be at least 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise BenchmarkConfigError("concurrency must be at least 1")
        if not self.request_rate > 0:
            raise BenchmarkConfigError("request_rate must be positive (inf = all at once)")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise BenchmarkConfigError("temperature must be between 0 and 2")
        if self.max_tokens < 1 or self.prompt_words < 1:
            raise BenchmarkConfigError("max_tokens and prompt_words must be at least 1")
        if self.warmup < 0:
            raise BenchmarkConfigError("warmup must not be negative")
        if not self.timeout > 0:
            raise BenchmarkConfigError("timeout must be positive")
        if not self.percentiles or any(not 0 < p <= 100 for p in self.percentiles):
            raise BenchmarkConfigError("percentiles must be in (0, 100]")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + ENDPOINT_PATHS[self.endpoint]
