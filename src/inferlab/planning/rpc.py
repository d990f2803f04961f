"""What llama.cpp's RPC split adds to each decode step.

The leader runs the layers it keeps, then each worker's layers in turn (no overlap: a token goes
through the stages one after another). Decode graphs are reused between steps, so a step sends no
graph: per worker it writes the incoming activations (asynchronously), asks for a recompute
(asynchronously) and reads the outgoing activations back, which waits for the worker: one round
trip plus the activations (hidden x 4 B per token, f32) each way over the link. Compute does not
change: the same layers run, only on other processes.
"""

from __future__ import annotations

from inferlab.planning.specs import Interconnect, ModelSpec

ACTIVATION_BYTES = 4  # f32 hidden states cross between backends


def rpc_step_overhead_s(model: ModelSpec, workers: int, link: Interconnect, batch: int = 1) -> float:
    """Seconds one decode step of ``batch`` sequences gains from ``workers`` RPC workers over ``link``."""
    if workers <= 0:
        return 0.0
    activations = batch * model.hidden * ACTIVATION_BYTES
    round_trip = 2 * link.latency_s
    return workers * (round_trip + 2 * activations / (link.bandwidth_gbps * 1e9))


def rpc_split_tokens_per_s(single_tokens_per_s: float, model: ModelSpec, workers: int, link: Interconnect,
                           batch: int = 1) -> float:
    """One stream's speed once the model is split: the single process's step plus the hops."""
    step = 1.0 / single_tokens_per_s + rpc_step_overhead_s(model, workers, link, batch)
    return 1.0 / step
