"""InferLab's Python client: inference through the official ``openai`` SDK, pre-configured, and a
typed client (sync and async) for InferLab's admin and customer APIs."""

from inferlab_client._client import AsyncInferLab, InferLab
from inferlab_client._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GatewayTimeoutError,
    InferLabError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    UpstreamError,
)
from inferlab_client._generated import (
    OPERATIONS,
    AdminAPI,
    AsyncAdminAPI,
    AsyncCustomerAPI,
    CustomerAPI,
    Operation,
)
from inferlab_client._pagination import apaginate, paginate
from inferlab_client._retry import RetryPolicy
from inferlab_client._transport import CallEvent, JSONObject
from inferlab_client._version import __version__

__all__ = [
    "OPERATIONS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AdminAPI",
    "AsyncAdminAPI",
    "AsyncCustomerAPI",
    "AsyncInferLab",
    "AuthenticationError",
    "BadRequestError",
    "CallEvent",
    "ConflictError",
    "CustomerAPI",
    "GatewayTimeoutError",
    "InferLab",
    "InferLabError",
    "JSONObject",
    "NotFoundError",
    "Operation",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "UpstreamError",
    "__version__",
    "apaginate",
    "paginate",
]
