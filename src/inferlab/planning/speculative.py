"""Speculative decoding as an option of the speed model.

A draft (an EAGLE head, a multi-token-prediction layer, a small model) proposes ``draft_tokens``
tokens one after another; the target model checks them all in one forward pass over
``draft_tokens + 1`` positions per sequence and keeps the longest agreeing prefix plus one token of
its own. A step therefore costs one verify pass (memory bound like a decode step, but touching more
MoE experts) plus ``draft_tokens`` draft passes, and emits ``acceptance_length`` tokens per stream
on average. ``acceptance_length`` depends on the draft, the model and the text; it is an input,
with published figures as defaults (:data:`PUBLISHED_ACCEPTANCE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.errors import InvalidRequest
from inferlab.planning.specs import SourceRef


@dataclass(frozen=True)
class Speculation:
    draft_tokens: int  # tokens the draft proposes per step
    acceptance_length: float  # mean tokens emitted per step and stream, 1 .. draft_tokens + 1
    draft_params_b: float  # parameters one draft pass reads (e.g. one layer + LM head)
    draft_layers: int = 1  # layers one draft pass runs (their fixed per-layer latency)
    draft_bytes_per_param: float = 2.0  # draft heads are usually kept in BF16
    method: str = "eagle3"

    def __post_init__(self) -> None:
        if self.draft_tokens < 1:
            raise InvalidRequest(f"draft_tokens must be at least 1, got {self.draft_tokens}", param="draft_tokens")
        if not 1 <= self.acceptance_length <= self.draft_tokens + 1:
            raise InvalidRequest(
                f"acceptance_length must be between 1 and draft_tokens + 1 ({self.draft_tokens + 1}),"
                f" got {self.acceptance_length}",
                param="acceptance_length",
            )
        if self.draft_params_b <= 0 or self.draft_layers < 1:
            raise InvalidRequest("draft_params_b must be positive and draft_layers at least 1", param="draft_params_b")


@dataclass(frozen=True)
class PublishedAcceptance:
    method: str
    draft_tokens: int
    acceptance_length: float
    ref: SourceRef


#: Mean accepted length per verify step, as published (tokens per step, the target's own included).
PUBLISHED_ACCEPTANCE: tuple[PublishedAcceptance, ...] = (
    PublishedAcceptance("mtp", 3, 2.82, SourceRef(
        "NVIDIA TensorRT-LLM tech blog 1 (DeepSeek-R1 on 8x B200): MTP 1/2/3 layers accept 1.92/2.58/2.82", "2025-05", "P")),
    PublishedAcceptance("eagle3", 3, 2.94, SourceRef(
        "RedHatAI Llama-4-Maverick EAGLE-3 speculator card: coding (HumanEval) k=3 2.94, k=1 1.83, math 3.08", "2025-09", "S")),
)
