"""InferLab's error tree, translated to OpenAI-shaped JSON in exactly one place.

Every error a client can see is an ``InferLabError``; the API's error middleware turns it into
``{"error": {"message", "type", "code", "param"}}`` with ``status`` (and ``Retry-After`` when set).
Foreign errors (aiohttp client errors, engine HTTP errors) are converted in the backend adapters,
never further up. An engine's own error text never reaches a client as is: it is logged, redacted,
and only a request's 4xx verdict (context too long...) is passed on, redacted (``backends/engine_errors.py``).

    InferLabError                      500 internal_error
    ├── InvalidRequest                 400 invalid_request_error
    │   ├── UnsupportedFeature         400 invalid_request_error / unsupported
    │   └── RequestExceedsLimit        400 invalid_request_error / request_exceeds_limit (can never fit)
    ├── AuthenticationFailed           401 authentication_error
    ├── PermissionDenied               403 permission_error
    ├── NotFound                       404 not_found_error
    │   └── ModelNotFound              404 not_found_error / model_not_found
    ├── Conflict                       409 conflict_error (the change contradicts what is stored)
    ├── RequestTimeout                 408 timeout_error
    ├── PayloadTooLarge                413 invalid_request_error / payload_too_large
    ├── UnsupportedContentEncoding     415 invalid_request_error / unsupported_content_encoding
    ├── RateLimited                    429 rate_limit_error (+ Retry-After)
    │   ├── EngineBusy                 429 the engine's own 429, with its Retry-After
    │   └── QuotaExhausted             429 insufficient_quota, no Retry-After, x-should-retry: false
    ├── UpstreamError                  502 upstream_error   (engine failed before the first byte)
    │   ├── EngineRejected             the engine's own 400/413/422 (others 4xx), with its status
    │   └── EngineMisconfigured        502 the engine refused the gateway's own credentials (401/403)
    ├── ServiceUnavailable             503 service_unavailable (+ Retry-After)
    │   └── StoreUnavailable           the database does not answer (store_unavailable)
    └── UpstreamTimeout                504 timeout_error
"""

from __future__ import annotations

from typing import Any


class InferLabError(Exception):
    status: int = 500
    error_type: str = "internal_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.retry_after = retry_after

    def to_payload(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
            }
        }

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequest(InferLabError):
    status = 400
    error_type = "invalid_request_error"


class UnsupportedFeature(InvalidRequest):
    default_code = "unsupported"


class RequestExceedsLimit(InvalidRequest):
    """The request alone is larger than a limit (max_tokens above the TPM or a whole quota): no
    retry can ever admit it, so it is not a 429 that clients would retry."""

    default_code = "request_exceeds_limit"


class AuthenticationFailed(InferLabError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(InferLabError):
    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(InferLabError):
    status = 404
    error_type = "not_found_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class Conflict(InferLabError):
    status = 409
    error_type = "conflict_error"


class RequestTimeout(InferLabError):
    status = 408
    error_type = "timeout_error"
    default_code = "request_timeout"


class PayloadTooLarge(InferLabError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnsupportedContentEncoding(InferLabError):
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_content_encoding"


class RateLimited(InferLabError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, headers: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after, code=code)
        self.extra_headers = headers or {}

    def headers(self) -> dict[str, str]:
        return {**self.extra_headers, **super().headers()}


class QuotaExhausted(RateLimited):
    """A quota used up for its period: retrying before it resets cannot succeed. Like OpenAI's
    ``insufficient_quota``, without ``Retry-After``; ``x-should-retry: false`` stops the SDK's retries."""

    error_type = "insufficient_quota"
    default_code = "insufficient_quota"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={**(headers or {}), "x-should-retry": "false"})


class UpstreamError(InferLabError):
    status = 502
    error_type = "upstream_error"
    default_code = "engine_error"


class EngineRejected(UpstreamError):
    """The engine refused the request with a 4xx of its own (context too long, bad grammar...)."""

    error_type = "invalid_request_error"
    default_code = "engine_rejected"

    def __init__(self, message: str, *, status: int, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status if 400 <= status < 500 else 400


class EngineMisconfigured(UpstreamError):
    """The engine refused InferLab's own credentials: the gateway's configuration is wrong, not the
    request. The replica is marked misconfigured (``/admin/backends``) rather than counted as broken."""

    default_code = "engine_misconfigured"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # for operators: shown in the replica's state, never to clients


class EngineBusy(RateLimited):
    """The engine answered 429: another replica may take the request, else the client retries later."""

    default_code = "engine_overloaded"


class ServiceUnavailable(InferLabError):
    status = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


class StoreUnavailable(ServiceUnavailable):
    """The database behind keys and stored limits did not answer in time, or refused."""

    default_code = "store_unavailable"


class UpstreamTimeout(InferLabError):
    status = 504
    error_type = "timeout_error"
    default_code = "engine_timeout"


__all__ = [
    "AuthenticationFailed",
    "EngineBusy",
    "EngineMisconfigured",
    "EngineRejected",
    "InferLabError",
    "InvalidRequest",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaExhausted",
    "RateLimited",
    "RequestExceedsLimit",
    "RequestTimeout",
    "ServiceUnavailable",
    "StoreUnavailable",
    "UnsupportedContentEncoding",
    "UnsupportedFeature",
    "UpstreamError",
    "UpstreamTimeout",
]
