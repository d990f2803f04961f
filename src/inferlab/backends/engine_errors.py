"""An engine's error answer in InferLab's terms, with the engine's own words kept from the client.

An engine's error text may echo the provider's API key, file paths or other internals, so it goes
to the log (redacted, ``inferlab.backends``) and the client gets a message of the gateway's own,
with the request id. Only a verdict on the request itself (400, 413, 422: "context too long") is
passed on, redacted and shortened, because the client needs it to fix the request.

    engine answers      client gets                                          the replica
    400 / 413 / 422     same status, "The engine rejected the request: <why>"  not at fault
    other 4xx           same status, generic                                 not at fault
    401 / 403           502 engine_misconfigured, generic                    marked misconfigured
    429                 429 + Retry-After (the engine's, else 1 s)           not at fault; failover
    404, 408, 5xx       502 engine_error, generic                            a failure (breaker)
    error mid-stream    as its ``code`` says; without one, 502 generic       a failure
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from inferlab.errors import EngineBusy, EngineMisconfigured, EngineRejected, InferLabError, UpstreamError
from inferlab.redaction import redact

REASON_STATUSES = frozenset({400, 413, 422})  # the engine's reason is passed on (redacted)
CREDENTIAL_STATUSES = frozenset({401, 403})
FAULT_4XX = frozenset({404, 408})  # the replica's fault (wrong model name, engine-side timeout)
CLIENT_REASON_CHARS = 400
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 86400.0
LOGGER = "inferlab.backends"


def engine_error_message(payload: Any, fallback: str) -> str:
    """Pull a human message out of the error shapes engines use (OpenAI, llama.cpp, Ollama, TGI)."""
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or fallback)
        if isinstance(error, str) and error:
            return error
        if isinstance(error, list) and error:
            return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in error)
    if isinstance(payload, str) and payload:
        return payload
    return fallback


def retry_after_s(headers: Mapping[str, str]) -> float:
    """Seconds the engine asks to wait (``retry-after-ms``, ``Retry-After`` seconds or HTTP date)."""
    seconds: float | None = None
    millis = headers.get("retry-after-ms")
    value = headers.get("Retry-After")
    try:
        if millis:
            seconds = float(millis) / 1000
        elif value:
            seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None and value:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            seconds = None
    if seconds is None or not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 1.0), MAX_RETRY_AFTER_S)


def _shortened(text: str) -> str:
    return text if len(text) <= CLIENT_REASON_CHARS else text[: CLIENT_REASON_CHARS - 1].rstrip() + "…"


def engine_error(
    backend: str,
    status: int | None,
    payload: Any,
    *,
    request_id: str | None = None,
    secrets: Iterable[str | None] = (),
    headers: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
) -> InferLabError:
    """The error to raise for an engine's error answer (``status`` None: an error event mid-stream
    that carried no status). Logs the engine's redacted text; see the module docstring."""
    said = redact(engine_error_message(payload, ""), secrets)
    ref = f" (request id {request_id})" if request_id else ""
    log = logger or logging.getLogger(LOGGER)
    request_fault = status is not None and 400 <= status < 500 and status not in CREDENTIAL_STATUSES | FAULT_4XX
    log.log(
        logging.INFO if request_fault else logging.WARNING,
        "engine error",
        extra={"replica": backend, "status": status, "request_id": request_id, "engine_message": said},
    )
    if status is None:
        return UpstreamError(f"The engine failed while generating the answer{ref}")
    if status in REASON_STATUSES:
        reason = f": {_shortened(said)}" if said else f" (HTTP {status})"
        return EngineRejected(f"The engine rejected the request{reason}{ref}", status=status)
    if status in CREDENTIAL_STATUSES:
        return EngineMisconfigured(
            f"The engine serving this model is misconfigured; the gateway's operator has to fix it{ref}",
            reason=f"engine rejected the gateway's credentials (HTTP {status})",
        )
    if status == 429:
        wait = retry_after_s(headers or {})
        return EngineBusy(f"The engine serving this model is overloaded; retry in {wait:.0f}s{ref}", retry_after=wait)
    if request_fault:
        return EngineRejected(f"The engine rejected the request (HTTP {status}){ref}", status=status)
    return UpstreamError(f"The engine failed to process the request (HTTP {status}){ref}")
