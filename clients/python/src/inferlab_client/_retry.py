"""When to retry and how long to wait: pure functions over an answer, shared by both transports.

Retried: 429 (unless the quota is exhausted), 503, 408, a 409 ``idempotency_key_in_use`` and a
connection that could not be opened, for every method; 502, 504 and a connection lost mid-request
only for requests that are safe to repeat: GET, PUT, DELETE, PATCH (they set state: repeating them
is harmless) and a POST that InferLab de-duplicates by its ``Idempotency-Key`` (``deduplicated``:
the admin API and the customer resources; the client sends the same key on every attempt, so a
repeat after a lost answer gets the first attempt's response instead of running twice). An
inference POST (``/v1/chat/completions`` and the like) is not de-duplicated by the server and is
not repeated once it may have reached it. Never retried: every other 4xx, a 429 whose type or
code is ``insufficient_quota``, any answer carrying ``x-should-retry: false``.

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
DEDUPLICATED_PREFIXES = ("/admin/", "/v1/batches")  # POSTs the server de-duplicates by Idempotency-Key
KEY_IN_USE = "idempotency_key_in_use"  # 409: the first attempt with this key is still running


def deduplicated(method: str, path: str) -> bool:
    """Whether the server answers a repeat of this request with the first one's response."""
    return method == "POST" and path.split("?", 1)[0].startswith(DEDUPLICATED_PREFIXES)


def safe_to_repeat(method: str, path: str | None = None) -> bool:
    return method in IDEMPOTENT or (path is not None and deduplicated(method, path))


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


def key_in_use(status: int, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return status == 409 and isinstance(error, dict) and error.get("code") == KEY_IN_USE


def retry_delay(policy: RetryPolicy, attempt: int, method: str, status: int, headers: Mapping[str, str],
                body: Any, path: str | None = None) -> float | None:
    """How long to wait before retrying this error answer, or ``None``: do not retry it."""
    if attempt >= policy.max_retries:
        return None
    should = headers.get("x-should-retry", "").lower()
    if should == "false" or (status == 429 and quota_exhausted(body)):
        return None
    repeatable = status in RETRY_ALWAYS or key_in_use(status, body) or (
        status in RETRY_IF_IDEMPOTENT and safe_to_repeat(method, path))
    if should != "true" and not repeatable:
        return None
    after = parse_retry_after(headers.get("retry-after"))
    if after is None:
        return policy.backoff(attempt)
    if after > policy.max_retry_after:
        return None
    return after + policy.random() * min(0.25, after * 0.1)  # at least what the server asked; herds spread out


def connection_retry_delay(policy: RetryPolicy, attempt: int, method: str, *, sent: bool,
                           path: str | None = None) -> float | None:
    """A request without an answer: retried when it never left (``sent`` False) or is safe to repeat."""
    if attempt >= policy.max_retries or (sent and not safe_to_repeat(method, path)):
        return None
    return policy.backoff(attempt)
