"""The fill-in-the-middle step: a completion's ``suffix`` rendered through the model's template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inferlab.code.fim import FimTemplate, apply_fim
from inferlab.pipeline import Call, Next, Reply
from inferlab.types import RequestKind


@dataclass(frozen=True, slots=True)
class FimPolicy:
    """How a model honours ``suffix``: a template the gateway renders, or the engine's own support."""

    template: FimTemplate | None = None
    engine_handles_suffix: bool = False


class FillInTheMiddle:
    def __init__(self, policies: Mapping[str, FimPolicy]) -> None:
        self._policies = dict(policies)

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        if call.kind is RequestKind.COMPLETION and call.body.get("suffix") is not None:
            policy = self._policies.get(call.model, FimPolicy())
            if not (policy.engine_handles_suffix and policy.template is None):
                call.body = apply_fim(call.body, policy.template, call.model)
        return await call_next(call)
