"""The fixed latency of one forward step: what does not shrink when each device reads fewer bytes.

A decode step of a large model on eight GPUs reads only a few GB per GPU, so its time is set less by
memory bandwidth than by costs that are paid per step and per layer whatever the bytes:

* ``engine``: host work per step (scheduling, sampling, launching the step's CUDA graph);
* ``layers``: the kernel launch and synchronisation floor of every layer, and on MoE layers the
  router, top-k and token permutation kernels;
* ``tensor parallel``: two all-reduces per layer (after attention and after the MLP) of
  ``tokens x hidden`` activations over the interconnect (:mod:`collectives`);
* ``expert parallel``: on MoE layers one all-reduce (attention) plus a dispatch and a combine
  all-to-all of ``tokens x k x hidden`` activations instead of the MLP all-reduce;
* ``pipeline``: one hand-off of ``tokens x hidden`` activations between consecutive stages.

The per-step and per-layer constants are catalogue defaults per runtime (vLLM, SGLang,
TensorRT-LLM) or else per engine family, calibrated on published 4-8 GPU decode speeds
(``defaults.step_overhead``). For llama.cpp they are zero: its
calibrated bandwidth efficiencies come from its own single-device runs and already carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.collectives import all_reduce_s, all_to_all_s, link_for, send_s
from inferlab.planning.deployment import Deployment


@dataclass(frozen=True)
class StepOverhead:
    engine_s: float
    layers_s: float
    tensor_parallel_s: float
    expert_parallel_s: float
    pipeline_s: float

    @property
    def total(self) -> float:
        return self.engine_s + self.layers_s + self.tensor_parallel_s + self.expert_parallel_s + self.pipeline_s


def _constant(catalogue: Catalogue, d: Deployment, name: str) -> float:
    for key in (f"step_overhead.{name}.{d.engine.runtime}", f"step_overhead.{name}.{d.engine.family}"):
        if key in catalogue.defaults:
            return catalogue.default(key)
    return 0.0


def step_overhead(catalogue: Catalogue, d: Deployment, tokens: float, *, layers: int | None = None,
                  engine_step: bool = True) -> StepOverhead:
    """Fixed latency of one step over ``tokens`` tokens through ``layers`` layers (default: the model's,
    one pipeline stage after another); ``engine_step`` False leaves out the per-step host work (a draft
    pass inside a speculative step)."""
    m, par = d.model, d.parallel
    n_layers = m.layers if layers is None else layers
    moe_layers = round(m.expert_layers * n_layers / m.layers)
    activation = catalogue.default("activation_bytes_per_element")
    message = tokens * m.hidden * activation
    layers_s = n_layers * _constant(catalogue, d, "layer_s") + moe_layers * _constant(catalogue, d, "moe_layer_s")
    tp_link = link_for(catalogue, d, par.tensor)
    all_reduce = all_reduce_s(tp_link, par.tensor, message)
    if par.expert and par.tensor > 1 and moe_layers:
        dense_layers = n_layers - moe_layers
        tp_s = (2 * dense_layers + moe_layers) * all_reduce
        ep_s = 2 * moe_layers * (all_to_all_s(tp_link, par.tensor, message * m.experts_active))
    else:
        tp_s, ep_s = 2 * n_layers * all_reduce, 0.0
    pp_link = link_for(catalogue, d, d.devices if d.devices > d.accelerator.node_devices else par.pipeline)
    pp_s = (par.pipeline - 1) * send_s(pp_link, message) if par.pipeline > 1 else 0.0
    engine_s = _constant(catalogue, d, "engine_s") if engine_step else 0.0
    return StepOverhead(engine_s, layers_s, tp_s, ep_s, pp_s)
