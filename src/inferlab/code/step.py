"""The fill-in-the-middle step: a completion's ``suffix`` rendered through the model's template,
with the repository context an earlier step left on the call (``code.context``), or handed to the
engine's native infill route as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inferlab.code.fim import ContextFile, FimTemplate, apply_fim, merged_stop
from inferlab.pipeline import Call, Next, Reply
from inferlab.types import RequestKind

CONTEXT_NOTE = "code.context"


@dataclass(frozen=True, slots=True)
class FimContext:
    """What goes in front of the file being edited: other files' chunks, its own path, the repository."""

    files: tuple[ContextFile, ...] = ()
    path: str | None = None
    repo: str | None = None


@dataclass(frozen=True, slots=True)
class FimPolicy:
    """How a model honours ``suffix``: a template the gateway renders, the engine's native infill
    route (llama-server with a FIM vocabulary: prefix, suffix and context go as they are), or the
    engine's own ``suffix`` support (a remote OpenAI-compatible engine without a template)."""

    template: FimTemplate | None = None
    engine_handles_suffix: bool = False
    engine_infill: bool = False
    stop: tuple[str, ...] = field(default=())  # engine_infill: the vocabulary's end-of-generation words


class FillInTheMiddle:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, policies: Mapping[str, FimPolicy]) -> None:
        self._policies = dict(policies)

    def policy(self, model: str) -> FimPolicy:
        return self._policies.get(model, FimPolicy())

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        if call.kind is RequestKind.COMPLETION and call.body.get("suffix") is not None:
            policy = self.policy(call.model)
            context = call.notes.get(CONTEXT_NOTE)
            context = context if isinstance(context, FimContext) else FimContext()
            if policy.engine_infill:
                body = dict(call.body)
                if context.files:
                    body["input_extra"] = [{"filename": f.path, "text": f.text} for f in context.files]
                if policy.stop:
                    body["stop"] = merged_stop(body, policy.stop)
                call.body = body
            elif not (policy.engine_handles_suffix and policy.template is None):
                call.body = apply_fim(call.body, policy.template, call.model, context.files,
                                      path=context.path, repo=context.repo)
        return await call_next(call)
