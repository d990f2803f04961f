"""The SDK's retries against a live gateway's real rate limiter (a 2-second window): a 429 with
``Retry-After`` is waited out — at least as long as the server asked, measured — and retried; a 429
``insufficient_quota`` (a used-up quota) is raised at once, never retried."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from inferlab_client import CallEvent, InferLab, QuotaExhaustedError, RateLimitError, RetryPolicy

from .harness import Live

CHAT: Any = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
# backoff alone would wait at most 0.1 s: any longer wait is the server's Retry-After
QUICK = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1)


def member_key(admin: InferLab, name: str) -> tuple[str, str]:
    user = admin.admin.create_user({"name": name})
    created = admin.admin.create_key({"name": name, "user_id": user["id"]})
    return created["id"], created["key"]


def rate_limited(live: Live) -> tuple[float, CallEvent]:
    root = InferLab(live.url, live.root)
    key_id, token = member_key(root, "limited")
    root.admin.set_limit("key", key_id, {"rpm": 1})  # 1 request per 2-second window (ratelimit.window_s)
    events: list[CallEvent] = []
    no_retry = InferLab(live.url, token, max_retries=0)
    retrying = InferLab(live.url, token, retry=QUICK, observer=events.append)
    no_retry.request("POST", "/v1/chat/completions", body=CHAT)
    try:
        no_retry.request("POST", "/v1/chat/completions", body=CHAT)
        raise AssertionError("the second request in the window was admitted")
    except RateLimitError as exc:
        assert exc.retry_after is not None and exc.type == "rate_limit_error"
        advertised = exc.retry_after
    started = time.monotonic()
    reply = retrying.request("POST", "/v1/chat/completions", body=CHAT)
    assert reply["choices"] and time.monotonic() - started >= 1.0
    for client in (root, no_retry, retrying):
        client.close()
    return advertised, events[-1]


def quota_exhausted(live: Live) -> tuple[QuotaExhaustedError, list[CallEvent], float]:
    root = InferLab(live.url, live.root)
    key_id, token = member_key(root, "metered")
    root.admin.set_limit("key", key_id, {"daily_tokens": 40})
    spender = InferLab(live.url, token, max_retries=0)
    for _ in range(30):
        try:
            spender.request("POST", "/v1/chat/completions", body=CHAT)
        except QuotaExhaustedError:
            break
        except RateLimitError:
            time.sleep(0.2)  # tokens still reserved by the previous request: settle
    events: list[CallEvent] = []
    eager = InferLab(live.url, token, retry=RetryPolicy(max_retries=5, initial_delay=0.5), observer=events.append)
    started = time.monotonic()
    try:
        eager.request("POST", "/v1/chat/completions", body=CHAT)
        raise AssertionError("the quota was not exhausted")
    except QuotaExhaustedError as exc:
        error = exc
    elapsed = time.monotonic() - started
    for client in (root, spender, eager):
        client.close()
    return error, events, elapsed


async def test_retry_after_is_waited_out_then_the_request_succeeds(live: Live) -> None:
    advertised, event = await asyncio.to_thread(rate_limited, live)
    assert advertised >= 1.0
    assert event.status == 200 and event.attempts >= 2
    assert event.waited >= 1.0  # the server's Retry-After (>= 1 s), not the 0.1 s backoff ceiling
    assert event.seconds >= event.waited


async def test_a_quota_429_is_never_retried(live: Live) -> None:
    error, events, elapsed = await asyncio.to_thread(quota_exhausted, live)
    assert error.status == 429 and "insufficient_quota" in (error.type, error.code)
    assert error.headers.get("x-should-retry") == "false"
    assert [(e.status, e.attempts, e.waited) for e in events] == [(429, 1, 0.0)]
    assert elapsed < 0.5  # no backoff (the first would be >= 0.25 s)
