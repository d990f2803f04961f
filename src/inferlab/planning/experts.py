"""Mixture of experts: which expert weights a forward pass reads, and on which device.

A step that routes ``tokens`` tokens, each to ``k`` of a layer's ``E`` experts, touches each expert
with probability ``q = 1 - (1 - k/E)^tokens`` (routing taken as uniform and independent, which is
what the models' load-balancing losses aim for). Expert parameters are what total minus active
parameters say they are: ``(total - active) / (1 - k/E)``; everything else (attention, embeddings,
shared experts, dense layers) is read in full.

* Tensor parallelism shards every expert over the ranks: each device reads ``1/r`` of every touched
  expert, so the work is even.
* Expert parallelism gives each of the ``r`` devices ``E/r`` whole experts, and the MoE layer waits
  for the busiest device: the expected maximum of ``r`` binomial(``E/r``, ``q``) counts. With few
  tokens that is well above the mean (8 tokens, top-1 of 128 experts on 8 GPUs: one expert per GPU
  on average, 2.4 on the busiest).

Expert weights stored in block-scaled formats (FP8 with per-block scales) are read by grouped-GEMM
kernels that reach a lower share of the bandwidth than dense ones at small batches; the speed model
divides expert bytes by the catalogue's ``moe_expert_efficiency`` for the weight format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferlab.planning.deployment import Deployment
from inferlab.planning.memory import weights_bytes
from inferlab.planning.specs import ModelSpec


def expert_params(m: ModelSpec) -> float:
    """Parameters in routed experts (0 for a dense model)."""
    if not m.is_moe:
        return 0.0
    return (m.params - m.active_params) / (1 - m.experts_active / m.experts)


def touched_fraction(m: ModelSpec, tokens: float) -> float:
    """Share of a layer's experts that ``tokens`` routed tokens use at least once."""
    if not m.is_moe:
        return 1.0
    return 1.0 - float((1 - m.experts_active / m.experts) ** max(tokens, 1))


def expected_busiest(experts_per_rank: int, q: float, ranks: int) -> float:
    """E[max of ``ranks`` independent binomial(experts_per_rank, q)]: experts the busiest rank runs."""
    if ranks <= 1:
        return experts_per_rank * q
    pmf = [math.comb(experts_per_rank, i) * q**i * (1 - q) ** (experts_per_rank - i) for i in range(experts_per_rank + 1)]
    total, cdf = 0.0, 0.0
    for m in range(experts_per_rank):  # E[max] = sum over m >= 1 of P(max >= m) = 1 - F(m-1)^ranks
        cdf += pmf[m]
        total += 1 - min(cdf, 1.0) ** ranks
    return total


@dataclass(frozen=True)
class WeightReads:
    """Weight bytes the busiest device reads in one pass: the dense part and the routed experts."""

    shared: float
    experts: float

    @property
    def total(self) -> float:
        return self.shared + self.experts


def weight_reads(d: Deployment, tokens: float) -> WeightReads:
    """What the busiest device reads in one forward pass over ``tokens`` tokens."""
    m = d.model
    per_param = weights_bytes(d) / m.params
    if not m.is_moe:
        return WeightReads(m.params * per_param / d.devices, 0.0)
    experts = expert_params(m)
    shared = (m.params - experts) * per_param / d.devices
    per_expert_layer = experts / m.expert_layers / m.experts * per_param  # one expert of one layer
    layers_per_stage = m.expert_layers / d.parallel.pipeline
    q = touched_fraction(m, tokens)
    ranks = d.parallel.tensor
    if d.parallel.expert and ranks > 1:
        busiest = expected_busiest(math.ceil(m.experts / ranks), q, ranks)
        return WeightReads(shared, busiest * per_expert_layer * layers_per_stage)
    return WeightReads(shared, m.experts * q * per_expert_layer * layers_per_stage / ranks)


def weight_bytes_per_device(d: Deployment, tokens: float) -> float:
    """Weight bytes the busiest device reads in one forward pass over ``tokens`` tokens."""
    return weight_reads(d, tokens).total
