"""The Python SDK (clients/python) without a gateway: the generated module is current, the retry
rules, the headers sent, the public surface, and ``mypy --strict`` on the examples that use it.
Its live tests are tests/integration/sdk."""

from __future__ import annotations

import importlib.util
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import httpx2
import inferlab_client
import pytest
from inferlab_client import (
    APIConnectionError,
    ConflictError,
    QuotaExhaustedError,
    RetryPolicy,
    ServiceUnavailableError,
)
from inferlab_client._retry import connection_retry_delay, parse_retry_after, retry_delay
from inferlab_client._transport import AsyncTransport, CallEvent, SyncTransport
from mypy import api as mypy_api

CLIENT = Path(__file__).resolve().parents[3] / "clients" / "python"
NO_JITTER = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=4.0, random=lambda: 0.0)
QUOTA = {"error": {"message": "used up", "type": "insufficient_quota", "code": "insufficient_quota"}}
LIMITED = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inferlab_generate", CLIENT / "scripts" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_module_is_what_the_generator_writes_today() -> None:
    """Stale after a route changed: run ``python clients/python/scripts/generate.py``."""
    gen = generator()
    api, admin = gen.documents_in_process()
    text = gen.generate(api, admin)
    assert text == gen.generate(api, admin)  # deterministic
    assert (CLIENT / "src" / "inferlab_client" / "_generated.py").read_text() == text, \
        "clients/python/src/inferlab_client/_generated.py is stale: run python clients/python/scripts/generate.py"


def test_method_names_are_stable_and_readable() -> None:
    name = generator().method_name
    assert name("get", "/admin/users", {"parameters": [{"name": "limit", "in": "query"}]}) == "list_users"
    assert name("get", "/admin/users/{user_id}", {}) == "get_user"
    assert name("post", "/admin/users", {"responses": {"201": {}}}) == "create_user"
    assert name("post", "/admin/keys/{key_id}/rotate", {"responses": {"201": {}}}) == "rotate_key"
    assert name("post", "/admin/tenants/{tenant_id}/suspend", {"responses": {"200": {}}}) == "suspend_tenant"
    assert name("post", "/admin/autoscaler/decisions", {"responses": {"201": {}}}) == "create_autoscaler_decision"
    assert name("put", "/admin/tiers/{tier}", {}) == "set_tier"
    assert name("delete", "/admin/anomalies/{anomaly_id}", {}) == "delete_anomaly"


def test_the_retry_rules() -> None:
    def delay(status: int, method: str = "GET", headers: dict[str, str] | None = None, body: object = None,
              attempt: int = 0) -> float | None:
        return retry_delay(NO_JITTER, attempt, method, status, headers or {}, body)

    assert delay(429, "POST", {"retry-after": "3"}, LIMITED) == 3.0
    assert delay(429, "POST", {}, QUOTA) is None  # a used-up quota is not retried
    assert delay(429, "POST", {"retry-after": "3", "x-should-retry": "false"}, LIMITED) is None
    assert delay(429, "GET", {"retry-after": "600"}, LIMITED) is None  # longer than max_retry_after: raise
    assert delay(503, "POST") == 0.25 and delay(503, "POST", attempt=2) == 1.0  # backoff: half fixed, half jitter
    assert delay(502, "GET") == 0.25 and delay(502, "POST") is None  # a POST may have reached the engine
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert delay(status) is None
    assert delay(503, attempt=3) is None  # max_retries reached
    assert delay(400, headers={"x-should-retry": "true"}) == 0.25
    ceiling = RetryPolicy(initial_delay=1, max_delay=4, random=lambda: 1.0)
    assert [ceiling.backoff(n) for n in range(5)] == [1, 2, 4, 4, 4]
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 28 <= (parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT")) or 0) <= 30
    assert parse_retry_after("soon") is None and parse_retry_after("-2") == 0.0


def test_posts_the_server_deduplicates_are_repeated_after_a_lost_answer() -> None:
    """The server de-duplicates admin and customer POSTs by Idempotency-Key: a repeat after a 502,
    a 504 or a lost connection gets the first attempt's response; inference POSTs are not repeated."""
    def delay(status: int, path: str, body: object = None) -> float | None:
        return retry_delay(NO_JITTER, 0, "POST", status, {}, body, path=path)

    assert delay(502, "/admin/keys") == 0.25 and delay(504, "/v1/batches") == 0.25
    assert delay(502, "/v1/chat/completions") is None and delay(504, "/v1/responses") is None
    lost = {path: connection_retry_delay(NO_JITTER, 0, "POST", sent=True, path=path)
            for path in ("/admin/users", "/v1/batches/b1/cancel", "/v1/chat/completions", "/v1/embeddings")}
    assert lost == {"/admin/users": 0.25, "/v1/batches/b1/cancel": 0.25, "/v1/chat/completions": None,
                    "/v1/embeddings": None}
    assert connection_retry_delay(NO_JITTER, 0, "POST", sent=False, path="/v1/chat/completions") == 0.25
    in_use = {"error": {"message": "busy", "type": "conflict_error", "code": "idempotency_key_in_use"}}
    assert retry_delay(NO_JITTER, 0, "POST", 409, {"retry-after": "1"}, in_use, path="/admin/keys") == 1.0
    assert delay(409, "/admin/keys", {"error": {"message": "taken", "type": "conflict_error"}}) is None
    reused = {"error": {"message": "reused", "type": "invalid_request_error", "code": "idempotency_key_reused"}}
    assert delay(422, "/admin/keys", reused) is None


def test_a_post_whose_answer_was_lost_is_repeated_with_the_same_key() -> None:
    keys: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx2.ReadError("connection reset", request=request)  # sent; the answer never came
        return httpx2.Response(201, json={"id": "u_1"}, headers={"idempotent-replayed": "true"})

    http = httpx2.Client(base_url="http://inferlab.test", transport=httpx2.MockTransport(handler))
    transport = SyncTransport("http://inferlab.test", None, retry=NO_JITTER, timeout=5, http_client=http)
    assert transport.call("post_admin_users", "POST", "/admin/users", body={"name": "a"}) == {"id": "u_1"}
    assert len(keys) == 2 and keys[0] == keys[1]
    transport.close()


def test_posts_carry_one_idempotency_key_across_retries() -> None:
    seen: list[httpx2.Request] = []
    answers = iter([httpx2.Response(503, json={"error": {"message": "busy", "type": "service_unavailable"}},
                                    headers={"Retry-After": "0"}),
                    httpx2.Response(201, json={"id": "u_1"})])

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return next(answers) if request.method == "POST" else httpx2.Response(200, json={"data": []})

    events: list[CallEvent] = []
    http = httpx2.Client(base_url="http://inferlab.test", transport=httpx2.MockTransport(handler))
    transport = SyncTransport("http://inferlab.test", "il-secret", retry=NO_JITTER, timeout=5, http_client=http,
                              observer=events.append)
    assert transport.call("post_admin_users", "POST", "/admin/users", body={"name": "a"}) == {"id": "u_1"}
    transport.call("get_admin_users", "GET", "/admin/users", query={"limit": 5, "after": None, "flag": True})
    posts = [r for r in seen if r.method == "POST"]
    assert len(posts) == 2 and posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    assert posts[0].headers["Authorization"] == "Bearer il-secret"
    assert "Idempotency-Key" not in seen[-1].headers and seen[-1].url.query == b"limit=5&flag=true"
    assert [(e.operation_id, e.status, e.attempts) for e in events] == [("post_admin_users", 201, 2),
                                                                        ("get_admin_users", 200, 1)]
    transport.close()


def test_errors_are_typed_by_status_and_code() -> None:
    def answer(status: int, body: object) -> Exception:
        http = httpx2.Client(transport=httpx2.MockTransport(lambda _: httpx2.Response(status, json=body)))
        transport = SyncTransport("http://x", None, retry=RetryPolicy(max_retries=0), timeout=5, http_client=http)
        with pytest.raises(inferlab_client.APIStatusError) as raised:
            transport.call("op", "GET", "http://x/op")
        return raised.value

    assert isinstance(answer(429, QUOTA), QuotaExhaustedError)
    assert type(answer(429, LIMITED)) is inferlab_client.RateLimitError
    assert isinstance(answer(409, {"error": {"message": "taken", "type": "conflict_error"}}), ConflictError)
    unavailable = answer(503, {"error": {"message": "down", "type": "service_unavailable", "code": "store_unavailable"}})
    assert isinstance(unavailable, ServiceUnavailableError) and unavailable.code == "store_unavailable"
    assert isinstance(answer(500, "not json"), inferlab_client.ServerError)


def test_the_public_surface() -> None:
    for name in inferlab_client.__all__:
        assert getattr(inferlab_client, name) is not None, name
    assert inferlab_client.InferLab("http://h:8000/v1/").base_url == "http://h:8000"


def test_mypy_strict_on_code_using_the_sdk() -> None:
    """The examples type-check strictly against the installed SDK (mypy's cache kept in the user's
    cache directory, as the lint's: warm from the second run, in a fresh clone too)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inferlab" / "mypy-sdk-examples"
    out, err, status = mypy_api.run(["--strict", "--config-file", "", "--cache-dir", str(cache), str(CLIENT / "examples")])
    assert status == 0, out + err


async def test_the_async_transport_retries_like_the_sync_one() -> None:
    calls: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/down" and calls.count("GET /down") == 1:
            raise httpx2.ConnectError("refused", request=request)  # never left: retried, POST or not
        if request.url.path == "/lost":
            raise httpx2.ReadError("reset", request=request)  # may have taken effect: a POST is not repeated
        if request.url.path == "/busy" and calls.count("GET /busy") == 1:
            return httpx2.Response(429, json=LIMITED, headers={"Retry-After": "0"})
        return httpx2.Response(200, json={"ok": True})

    events: list[CallEvent] = []
    http = httpx2.AsyncClient(base_url="http://inferlab.test", transport=httpx2.MockTransport(handler))
    transport = AsyncTransport("http://inferlab.test", "k", retry=NO_JITTER, timeout=5, http_client=http,
                               observer=events.append)
    assert await transport.call("busy", "GET", "/busy") == {"ok": True}
    assert await transport.call("down", "GET", "/down") == {"ok": True}
    with pytest.raises(APIConnectionError):
        await transport.call("lost", "POST", "/lost", body={})
    assert [(e.operation_id, e.status, e.attempts) for e in events] == [("busy", 200, 2), ("down", 200, 2),
                                                                        ("lost", None, 1)]
    await transport.close()
