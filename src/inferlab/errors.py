"""InferLab's error tree, translated to OpenAI-shaped JSON in exactly one place.

Every error a client can see is an ``InferLabError``; the API's error middleware turns it into
``{"error": {"message", "type", "code", "param"}}`` with ``status`` (and ``Retry-After`` when set).
Foreign errors (aiohttp client errors, engine HTTP errors) are converted in the backend adapters,
never further up.

    InferLabError                      500 internal_error
    ├── InvalidRequest                 400 invalid_request_error
    │   └── UnsupportedFeature         400 invalid_request_error / unsupported
    ├── AuthenticationFailed           401 authentication_error
    ├── PermissionDenied               403 permission_error
    ├── NotFound                       404 not_found_error
    │   └── ModelNotFound              404 not_found_error / model_not_found
    ├── RequestTimeout                 408 timeout_error
    ├── PayloadTooLarge                413 invalid_request_error / payload_too_large
    ├── UnsupportedContentEncoding     415 invalid_request_error / unsupported_content_encoding
    ├── RateLimited                    429 rate_limit_error (+ Retry-After)
    ├── UpstreamError                  502 upstream_error   (engine failed before the first byte)
    │   └── EngineRejected             the engine's own 4xx, passed on with its status
    ├── ServiceUnavailable             503 service_unavailable (+ Retry-After)
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
        return {"Retry-After": str(max(1, int(round(self.retry_after))))}


class InvalidRequest(InferLabError):
    status = 400
    error_type = "invalid_request_error"


class UnsupportedFeature(InvalidRequest):
    default_code = "unsupported"


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


class ServiceUnavailable(InferLabError):
    status = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


class UpstreamTimeout(InferLabError):
    status = 504
    error_type = "timeout_error"
    default_code = "engine_timeout"


__all__ = [
    "AuthenticationFailed",
    "EngineRejected",
    "InferLabError",
    "InvalidRequest",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "UnsupportedContentEncoding",
    "UnsupportedFeature",
    "UpstreamError",
    "UpstreamTimeout",
]
