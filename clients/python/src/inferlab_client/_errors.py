"""The client's error tree. Every error InferLab answers is OpenAI-shaped JSON
(``{"error": {"message", "type", "code", "param"}}``); it becomes one of these, by status:

    InferLabError
    ├── APIConnectionError            no answer: connection refused, reset, timed out
    │   └── APITimeoutError           the request timed out
    └── APIStatusError                an answer with status >= 400 (.status, .type, .code, .param, .retry_after)
        ├── BadRequestError           400 (also 408 RequestTimeoutError, 413 PayloadTooLargeError, 415)
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        ├── ConflictError             409
        ├── RateLimitError            429 (retried, honouring Retry-After)
        │   └── QuotaExhaustedError   429 insufficient_quota: never retried (the quota resets, not the request)
        └── ServerError               5xx
            ├── UpstreamError         502 the engine failed
            ├── ServiceUnavailableError 503 (retried, honouring Retry-After)
            └── GatewayTimeoutError   504
"""

from __future__ import annotations

from typing import Any


class InferLabError(Exception):
    """Base of every error this client raises."""


class APIConnectionError(InferLabError):
    """The request got no answer (connection refused or reset, DNS, TLS)."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(InferLabError):
    """InferLab answered with an error status."""

    def __init__(self, status: int, body: Any, headers: dict[str, str], *, retry_after: float | None = None) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status = status
        self.body = body
        self.headers = headers
        self.message: str = str(error.get("message") or f"HTTP {status}")
        self.type: str | None = error.get("type")
        self.code: str | None = error.get("code")
        self.param: str | None = error.get("param")
        self.retry_after = retry_after
        super().__init__(f"{status} {self.type or 'error'}: {self.message}")


class BadRequestError(APIStatusError):
    """400: the request is invalid (``param`` names the field)."""


class RequestTimeoutError(BadRequestError):
    """408: the request body was not received in time."""


class PayloadTooLargeError(BadRequestError):
    """413: the body is larger than the server accepts."""


class AuthenticationError(APIStatusError):
    """401: no credential, or a bad one."""


class PermissionDeniedError(APIStatusError):
    """403: the credential may not do this."""


class NotFoundError(APIStatusError):
    """404: no such object (another tenant's objects answer 404 too)."""


class ConflictError(APIStatusError):
    """409: the change contradicts what is stored."""


class RateLimitError(APIStatusError):
    """429: a rate limit, or the engine busy; ``retry_after`` says when to come back."""


class QuotaExhaustedError(RateLimitError):
    """429 ``insufficient_quota``: a quota is used up for its period; retrying cannot succeed."""


class ServerError(APIStatusError):
    """5xx."""


class UpstreamError(ServerError):
    """502: the engine failed before answering."""


class ServiceUnavailableError(ServerError):
    """503: no replica ready, shutting down, or the store not answering."""


class GatewayTimeoutError(ServerError):
    """504: the engine did not answer in time."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    408: RequestTimeoutError, 409: ConflictError, 413: PayloadTooLargeError, 415: BadRequestError,
    422: BadRequestError, 429: RateLimitError, 502: UpstreamError, 503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def error_for(status: int, body: Any, headers: dict[str, str], retry_after: float | None) -> APIStatusError:
    """The typed error of an answer with an error status."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIStatusError)
    error = body.get("error") if isinstance(body, dict) else None
    if status == 429 and isinstance(error, dict) and "insufficient_quota" in (error.get("type"), error.get("code")):
        cls = QuotaExhaustedError
    return cls(status, body, headers, retry_after=retry_after)
