"""Activation memory of a batched server (vLLM and the like), as vLLM itself measures it.

vLLM sizes its KV cache by profiling: it runs one dummy forward pass of ``max_num_batched_tokens``
tokens (the most a scheduler step may hold, chunked prefill included) and one dummy sampler pass
over ``max_num_seqs`` sequences, records the peak of torch memory above the weights, and gives the
KV cache ``gpu_memory_utilization x total memory`` minus weights, that peak and the non-torch
memory (CUDA graphs, NCCL buffers). So activations scale with the batched tokens, the hidden and
intermediate sizes and the vocabulary — not with the weights — and each tensor-parallel rank
holds only its slice of the intermediate (MLP) activations:

    per token  = bytes x (2 x hidden + experts_per_token x (3 x intermediate / TP + [MoE] hidden))
                 (the residual stream and the normed input, then gate_up 2I/TP and its SiLU output I/TP;
                 fused MoE keeps those per routed expert plus an H-wide output each)
    activation = max_num_batched_tokens x per token
                 + max_num_seqs x vocab x 4 B x sampler copies (float32 logits and probabilities)

``max_num_batched_tokens`` and ``max_num_seqs`` are vLLM's OpenAI-server defaults for the device
(``EngineArgs.get_batch_defaults``: 8192 / 1024 on devices of 70 GiB or more other than the A100,
2048 / 256 otherwise), kept with their source in the catalogue ``defaults``.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.specs import GIB

#: devices from this size up get vLLM's larger batch defaults (except the A100)
_LARGE_DEVICE_BYTES = 70 * GIB


@dataclass(frozen=True)
class BatchProfile:
    """The dummy batch vLLM profiles with."""

    tokens: int  # max_num_batched_tokens
    sequences: int  # max_num_seqs


def batch_profile(catalogue: Catalogue, d: Deployment) -> BatchProfile:
    acc = d.accelerator
    large = acc.memory_bytes() >= _LARGE_DEVICE_BYTES and "a100" not in acc.id.lower()
    size = "large_device" if large else "other_device"
    return BatchProfile(
        tokens=int(catalogue.default(f"vllm_max_num_batched_tokens.{size}")),
        sequences=int(catalogue.default(f"vllm_max_num_seqs.{size}")),
    )


def activation_bytes_per_token(catalogue: Catalogue, d: Deployment) -> float:
    """Peak activation bytes one batched token holds on one tensor-parallel rank."""
    m, tp = d.model, d.parallel.tensor
    routed = max(1, m.experts_active) if m.experts else 1
    mlp = 3 * m.intermediate / tp + (m.hidden if m.experts else 0)
    return catalogue.default("activation_bytes_per_element") * (2 * m.hidden + routed * mlp)


def sampler_bytes(catalogue: Catalogue, d: Deployment) -> float:
    """The dummy sampler pass: float32 logits (and their probabilities) for every sequence slot."""
    profile = batch_profile(catalogue, d)
    return profile.sequences * d.model.vocab * 4 * catalogue.default("sampler_logits_copies")


def batched_server_activation_bytes(catalogue: Catalogue, d: Deployment) -> float:
    """The profiled activation peak on one device (what vLLM logs as "activation peak memory")."""
    tokens = batch_profile(catalogue, d).tokens
    return tokens * activation_bytes_per_token(catalogue, d) + sampler_bytes(catalogue, d)
