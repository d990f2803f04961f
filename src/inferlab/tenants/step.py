"""The tier step: what the caller's tier allows, checked before anything is charged or routed.

- a tenant that is not active: 403 (``tenant_suspended`` / ``tenant_deleted``);
- a model outside the tier: 403 ``model_not_in_tier``; a feature outside it (streaming,
  embeddings, fill-in-the-middle as ``code``, an explicit cache read as ``cache``): 403
  ``feature_not_in_tier`` — both name the tier;
- ``max_tokens`` × ``n`` above the tier's cap, or an estimated prompt + ``max_tokens`` above its
  context cap: 400, or with ``over_cap: clamp`` the request's ``max_tokens`` lowered to fit (a
  prompt alone over the context cap is always a 400). A request without ``max_tokens`` under a
  capped tier is given the cap, so the engine never generates past it;
- the call gets the tier (later steps read its limits, priority and share), its priority class,
  the tier's default deadline when the request named none, and the ``x-inferlab-tier`` response
  header; a stream is watched, so suspending the tenant ends it.
"""

from __future__ import annotations

import time
from typing import Any

from inferlab.errors import InvalidRequest, PermissionDenied
from inferlab.pipeline import Call, Next, Reply
from inferlab.tenants.directory import TenantDirectory, refusal
from inferlab.tenants.tier import TIER_HEADER, Tier
from inferlab.types import RequestKind

CHARS_PER_TOKEN = 4  # a context cap refuses: estimate the prompt the usual way, not pessimistically


def prompt_chars(body: dict[str, Any]) -> int:
    """Characters of the prompt's text (messages' content, prompt, suffix)."""
    total = 0
    stack: list[Any] = [body.get("messages"), body.get("prompt"), body.get("suffix")]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, dict):
            stack.extend(v for k, v in value.items() if k in ("content", "text"))
        elif isinstance(value, list):
            stack.extend(value)
    return total


class EnforceTier:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, directory: TenantDirectory) -> None:
        self._directory = directory

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        context = await self._directory.context(call.caller.tenant_id)
        if not context.active:
            raise refusal(context)
        tier = call.tier = context.tier
        call.headers[TIER_HEADER] = tier.name
        if not tier.allows_model(call.model):
            raise PermissionDenied(f"The {tier.name} tier does not include the model '{call.model}'",
                                   code="model_not_in_tier", param="model")
        self._check_features(call, tier)
        if call.kind is not RequestKind.EMBEDDING:
            self._apply_caps(call, tier)
        call.priority = 0 if call.batch else tier.priority  # batch lines: the lowest, sheddable class
        if call.deadline is None and tier.spec.deadline_ms is not None:  # counted from the request's arrival
            call.deadline = time.monotonic() - (time.perf_counter() - call.started) + tier.spec.deadline_ms / 1000
        call.defer(self._directory.watch(context.tenant_id, call.interrupt))
        return await call_next(call)

    @staticmethod
    def _check_features(call: Call, tier: Tier) -> None:
        needed = []
        if call.stream:
            needed.append("streaming")
        if call.kind is RequestKind.EMBEDDING:
            needed.append("embeddings")
        if call.kind is RequestKind.COMPLETION and call.body.get("suffix") is not None:
            needed.append("code")
        if call.cache_mode == "use":
            needed.append("cache")
        for feature in needed:
            if feature not in tier.features:
                raise PermissionDenied(f"The {tier.name} tier does not include {feature}", code="feature_not_in_tier")
        if "cache" not in tier.features:
            call.cache_mode = "bypass"

    @staticmethod
    def _apply_caps(call: Call, tier: Tier) -> None:
        spec = tier.spec
        if spec.max_tokens is None and spec.max_context_tokens is None:
            return
        body = call.body
        field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        n = body.get("n") or 1
        asked = body.get(field)
        allowed = spec.max_tokens // n if spec.max_tokens is not None else None
        if spec.max_context_tokens is not None:
            prompt = prompt_chars(body) // CHARS_PER_TOKEN + 1
            room = spec.max_context_tokens - prompt
            if room < 1:
                raise InvalidRequest(
                    f"The prompt (about {prompt} tokens) is longer than the {tier.name} tier's context of "
                    f"{spec.max_context_tokens} tokens", code="context_over_tier_cap", param="messages")
            allowed = room if allowed is None else min(allowed, room)
        assert allowed is not None
        if asked is None:
            body[field] = max(allowed, 1)
        elif asked > allowed:
            if spec.over_cap == "refuse" or allowed < 1:
                raise InvalidRequest(
                    f"{field} × n may be at most {allowed * n} on the {tier.name} tier (asked {asked * n})",
                    code="max_tokens_over_tier_cap", param=field)
            body[field] = allowed
