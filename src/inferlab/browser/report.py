"""A usage report from a browser: what one local generation used, as the client sends it, parsed
and checked for plausibility. Pure: no I/O, no clock of its own (``now`` is passed in).

Checks (each a 400 naming the field, or a 422 ``implausible_usage``):

- the fields' types and bounds; ``id`` is the client's own event id (the idempotency key);
- the model is in the browser catalogue (else 400 ``unknown_browser_model``);
- ``created`` is neither older than ``max_age_s`` nor further ahead than ``skew_s``;
- prompt + completion tokens fit the context the model is loaded with;
- the decode speed ``completion_tokens / (duration - ttft)`` is at most the model's
  ``max_tokens_per_s``, and ``ttft_ms`` is not longer than ``duration_ms``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from inferlab.browser.catalogue import BrowserCatalogue, BrowserModel
from inferlab.errors import InvalidRequest

_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
ENGINES = ("wllama", "webllm")
STATUSES = ("success", "error", "disconnect")
MAX_DURATION_MS = 3_600_000.0
FIELDS = frozenset({"id", "model", "engine", "created", "prompt_tokens", "completion_tokens", "duration_ms",
                    "ttft_ms", "status", "request_id", "fallback"})

Status = Literal["success", "error", "disconnect"]


class ImplausibleUsage(InvalidRequest):
    status = 422


@dataclass(frozen=True, slots=True)
class LocalUsage:
    id: str
    model: BrowserModel
    engine: str
    created: float  # unix seconds, when the local generation ended
    prompt_tokens: int
    completion_tokens: int
    duration_ms: float
    ttft_ms: float | None
    status: Status
    request_id: str | None


def _int(body: dict[str, Any], name: str, limit: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InvalidRequest(f"'{name}' must be an integer from 0 to {limit}", param=name)
    return value


def _number(body: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise InvalidRequest(f"'{name}' must be a non-negative number", param=name)
    return float(value)


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(choices)}", param=name)
    return str(value)


def parse_report(body: object, catalogue: BrowserCatalogue, *, now: float, max_age_s: float,
                 skew_s: float) -> LocalUsage:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object (one usage report)")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}", param=unknown[0], code="unknown_parameter")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not _ID.match(event_id):
        raise InvalidRequest("'id' must be 8 to 64 letters, digits, '.', '_', ':' or '-' (the client's event id)",
                             param="id")
    name = body.get("model")
    model = catalogue.get(name) if isinstance(name, str) else None
    if model is None:
        raise InvalidRequest(f"{name!r} is not a model of the browser catalogue", param="model",
                             code="unknown_browser_model")
    request_id = body.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 128):
        raise InvalidRequest("'request_id' must be a string of at most 128 characters", param="request_id")
    created = _number(body, "created")
    assert created is not None
    if created < now - max_age_s or created > now + skew_s:
        raise ImplausibleUsage("'created' is too far from the server's clock", param="created",
                               code="implausible_usage")
    usage = LocalUsage(
        id=event_id, model=model, engine=_choice(body, "engine", ENGINES, "wllama"), created=created,
        prompt_tokens=_int(body, "prompt_tokens", model.context_size),
        completion_tokens=_int(body, "completion_tokens", model.context_size),
        duration_ms=_duration(body), ttft_ms=_number(body, "ttft_ms", optional=True),
        status=_status(body), request_id=request_id)
    check_plausible(usage)
    return usage


def _duration(body: dict[str, Any]) -> float:
    duration = _number(body, "duration_ms")
    assert duration is not None
    if duration > MAX_DURATION_MS:
        raise InvalidRequest("'duration_ms' is at most one hour", param="duration_ms")
    return duration


def _status(body: dict[str, Any]) -> Status:
    value = _choice(body, "status", STATUSES, "success")
    return "success" if value == "success" else "error" if value == "error" else "disconnect"


def check_plausible(usage: LocalUsage) -> None:
    """Tokens against the context, and against the time they took."""
    model = usage.model
    if usage.prompt_tokens + usage.completion_tokens > model.context_size:
        raise ImplausibleUsage(f"more tokens than the {model.context_size}-token context {model.name} runs with",
                               param="completion_tokens", code="implausible_usage")
    ttft = usage.ttft_ms or 0.0
    if ttft > usage.duration_ms:
        raise ImplausibleUsage("'ttft_ms' is longer than 'duration_ms'", param="ttft_ms", code="implausible_usage")
    decoding_s = (usage.duration_ms - ttft) / 1000.0
    # the first token comes with the prompt: the rest were decoded in the time after it
    decoded = max(0, usage.completion_tokens - 1)
    if decoded and (decoding_s <= 0 or decoded / decoding_s > model.max_tokens_per_s):
        raise ImplausibleUsage(f"{usage.completion_tokens} tokens in {usage.duration_ms:g} ms is faster than "
                               f"{model.name} runs in a browser ({model.max_tokens_per_s:g} tokens/s at most)",
                               param="duration_ms", code="implausible_usage")
