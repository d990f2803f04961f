"""When to retry and how long to wait: pure functions over an answer, shared by both transports.

Retried: 429 (unless the quota is exhausted), 503, 408, and a connection that could not be opened,
for every method; 502, 504 and a connection lost mid-request only for methods without side effects
(GET, PUT, DELETE, PATCH set state: repeating them is harmless). A POST is not repeated after its
request may have reached the engine: InferLab does not deduplicate by ``Idempotency-Key`` (the
client sends one anyway, for proxies and future servers). Never retried: every other 4xx, a 429
whose type or code is ``insufficient_quota``, any answer carrying ``x-should-retry: false``.

The wait: ``Retry-After`` when the server sends it (seconds or an HTTP date; a wait longer than
``max_retry_after`` is not waited for, the error is raised), else exponential backoff
``initial_delay * 2**attempt`` capped at ``max_delay``, with "equal jitter" (half fixed, half random).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

RETRY_ALWAYS = frozenset({408, 429, 503})
RETRY_IF_IDEMPOTENT = frozenset({502, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt + 1`` when the server gave no Retry-After."""
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** attempt)
        return ceiling / 2 + self.random() * ceiling / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait: ``Retry-After: 3`` or ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def quota_exhausted(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and "insufficient_quota" in (error.get("type"), error.get("code"))


def retry_delay(policy: RetryPolicy, attempt: int, method: str, status: int, headers: Mapping[str, str],
                body: Any) -> float | None:
    """How long to wait before retrying this error answer, or ``None``: do not retry it."""
    if attempt >= policy.max_retries:
        return None
    should = headers.get("x-should-retry", "").lower()
    if should == "false" or (status == 429 and quota_exhausted(body)):
        return None
    if should != "true" and status not in RETRY_ALWAYS and not (status in RETRY_IF_IDEMPOTENT and method in IDEMPOTENT):
        return None
    after = parse_retry_after(headers.get("retry-after"))
    if after is None:
        return policy.backoff(attempt)
    if after > policy.max_retry_after:
        return None
    return after + policy.random() * min(0.25, after * 0.1)  # at least what the server asked; herds spread out


def connection_retry_delay(policy: RetryPolicy, attempt: int, method: str, *, sent: bool) -> float | None:
    """A request without an answer: retried when it never left (``sent`` False) or has no side effects."""
    if attempt >= policy.max_retries or (sent and method not in IDEMPOTENT):
        return None
    return policy.backoff(attempt)
