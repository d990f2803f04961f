"""HTTP to InferLab: authentication, idempotency keys, retries (``_retry``), typed errors (``_errors``).

``SyncTransport`` and ``AsyncTransport`` differ only in how they wait and send; what to send and
what an answer means are shared functions. Every finished call is reported to an optional
``observer`` (a ``CallEvent``: operation, status, attempts, seconds) for logs or metrics.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2

from inferlab_client._errors import APIConnectionError, APITimeoutError, error_for
from inferlab_client._retry import RetryPolicy, connection_retry_delay, parse_retry_after, retry_delay
from inferlab_client._version import __version__

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class CallEvent:
    operation_id: str
    method: str
    path: str
    status: int | None  # None: no answer
    attempts: int
    seconds: float  # the whole call, retries and waits included
    waited: float  # of which spent waiting between attempts (Retry-After or backoff)


Observer = Callable[[CallEvent], None]


def quote_path(value: object) -> str:
    return quote(str(value), safe="")


def _headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": f"inferlab-client/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return {**headers, **(extra or {})}


def _query(query: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (query or {}).items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _call_headers(method: str, idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key or str(uuid.uuid4())} if method == "POST" else {}


def _body(response: httpx2.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text


def _result(response: httpx2.Response, expect: str) -> Any:
    if expect == "none":
        return None
    if expect == "bytes":
        return response.content
    if expect == "text":
        return response.text
    body = _body(response)
    if expect == "json" and not isinstance(body, dict):
        return {"data": body} if isinstance(body, list) else {"value": body}
    return body


def _error(response: httpx2.Response, body: Any) -> Exception:
    headers = {name.lower(): value for name, value in response.headers.items()}
    return error_for(response.status_code, body, headers, parse_retry_after(headers.get("retry-after")))


def _sent(exc: httpx2.TransportError) -> bool:
    """Whether the request may have reached the server (a connect failure means it did not)."""
    return not isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout)


def _connection_error(exc: httpx2.TransportError) -> APIConnectionError:
    if isinstance(exc, httpx2.TimeoutException):
        return APITimeoutError(f"request timed out: {exc}")
    return APIConnectionError(f"no answer from InferLab: {exc}")


class SyncTransport:
    def __init__(self, base_url: str, api_key: str | None, *, retry: RetryPolicy, timeout: float,
                 headers: Mapping[str, str] | None = None, observer: Observer | None = None,
                 http_client: httpx2.Client | None = None) -> None:
        self.retry = retry
        self.observer = observer
        self._http = http_client or httpx2.Client(base_url=base_url, timeout=timeout)
        self._headers = _headers(api_key, headers)

    def close(self) -> None:
        self._http.close()

    def call(self, operation_id: str, method: str, path: str, *, query: Mapping[str, Any] | None = None,
             body: Any = None, idempotency_key: str | None = None, expect: str = "json") -> Any:
        headers = {**self._headers, **_call_headers(method, idempotency_key)}
        started, attempt, waited = time.monotonic(), 0, 0.0
        while True:
            try:
                response = self._http.request(method, path, params=_query(query), headers=headers,
                                              json=body if body is not None else None)
            except httpx2.TransportError as exc:
                delay = connection_retry_delay(self.retry, attempt, method, sent=_sent(exc), path=path)
                if delay is None:
                    self._report(operation_id, method, path, None, attempt + 1, started, waited)
                    raise _connection_error(exc) from exc
                time.sleep(delay)
                waited += delay
                attempt += 1
                continue
            if response.status_code < 400:
                self._report(operation_id, method, path, response.status_code, attempt + 1, started, waited)
                return _result(response, expect)
            error_body = _body(response)
            delay = retry_delay(self.retry, attempt, method, response.status_code, response.headers, error_body,
                                path=path)
            if delay is None:
                self._report(operation_id, method, path, response.status_code, attempt + 1, started, waited)
                raise _error(response, error_body)
            time.sleep(delay)
            waited += delay
            attempt += 1

    def _report(self, operation_id: str, method: str, path: str, status: int | None, attempts: int,
                started: float, waited: float) -> None:
        if self.observer is not None:
            self.observer(CallEvent(operation_id, method, path, status, attempts, time.monotonic() - started, waited))


class AsyncTransport:
    def __init__(self, base_url: str, api_key: str | None, *, retry: RetryPolicy, timeout: float,
                 headers: Mapping[str, str] | None = None, observer: Observer | None = None,
                 http_client: httpx2.AsyncClient | None = None) -> None:
        self.retry = retry
        self.observer = observer
        self._http = http_client or httpx2.AsyncClient(base_url=base_url, timeout=timeout)
        self._headers = _headers(api_key, headers)

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, operation_id: str, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                   body: Any = None, idempotency_key: str | None = None, expect: str = "json") -> Any:
        headers = {**self._headers, **_call_headers(method, idempotency_key)}
        started, attempt, waited = time.monotonic(), 0, 0.0
        while True:
            try:
                response = await self._http.request(method, path, params=_query(query), headers=headers,
                                                    json=body if body is not None else None)
            except httpx2.TransportError as exc:
                delay = connection_retry_delay(self.retry, attempt, method, sent=_sent(exc), path=path)
                if delay is None:
                    self._report(operation_id, method, path, None, attempt + 1, started, waited)
                    raise _connection_error(exc) from exc
                await asyncio.sleep(delay)
                waited += delay
                attempt += 1
                continue
            if response.status_code < 400:
                self._report(operation_id, method, path, response.status_code, attempt + 1, started, waited)
                return _result(response, expect)
            error_body = _body(response)
            delay = retry_delay(self.retry, attempt, method, response.status_code, response.headers, error_body,
                                path=path)
            if delay is None:
                self._report(operation_id, method, path, response.status_code, attempt + 1, started, waited)
                raise _error(response, error_body)
            await asyncio.sleep(delay)
            waited += delay
            attempt += 1

    def _report(self, operation_id: str, method: str, path: str, status: int | None, attempts: int,
                started: float, waited: float) -> None:
        if self.observer is not None:
            self.observer(CallEvent(operation_id, method, path, status, attempts, time.monotonic() - started, waited))
