"""The usage event: what one request used, the ledger's unit.

Exactly one per call, whatever its ending (success, error, a stream cut short, a cancellation).
Its ``id`` is the gateway's own, unique per call: not the ``x-request-id``, which a client may
choose and reuse (two requests sharing one would otherwise share one ledger line). Money is
``Decimal`` (USD) with at most 10 decimal places (the store's scale; more is refused, never
rounded), never float. Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum


class EventStatus(str, Enum):
    SUCCESS = "success"  # the whole answer reached the client
    ERROR = "error"  # refused or failed (before or after the first byte)
    DISCONNECT = "disconnect"  # the client left before the end
    CANCELLED = "cancelled"  # cancelled by the gateway (shutdown, drain deadline)


class TokenSource(str, Enum):
    ENGINE = "engine"  # the engine's own usage
    TOKENIZER = "tokenizer"  # counted with the model's tokenizer (the engine's /tokenize)
    ESTIMATE = "estimate"  # the fallback: the tokenizer did not answer in time (body size / 4, a token a chunk)
    NONE = "none"  # no engine work was done (refused, cache hit)
    CLIENT = "client"  # generated on the client's own device (the browser hybrid) and reported by it


ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    id: str  # the gateway's own id of the request: unique, fixed when the call starts, the idempotency key
    time: datetime  # when the request ended (UTC)
    tenant: str
    user: str | None
    key: str | None
    tier: str
    route: str  # e.g. "/v1/chat/completions"
    model: str  # the public model name
    model_version: str | None
    replica: str | None  # the replica that answered (the last one dispatched to)
    hardware: str | None  # the replica's hardware name (the planning catalogue's, or configured)
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    token_source: TokenSource
    queue_ms: float | None
    ttft_ms: float | None
    duration_ms: float
    status: EventStatus
    http_status: int
    price: Decimal = ZERO  # list price, USD
    hardware_cost: Decimal = ZERO  # attributed hardware cost, USD
    request_id: str | None = None  # the x-request-id the client saw (may be the client's own: not unique)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
