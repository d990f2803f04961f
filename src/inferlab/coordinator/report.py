"""An engine plan in words (``inferlab deploy plan``) and as JSON (``--json``)."""

from __future__ import annotations

import shlex
from typing import Any

from inferlab.coordinator.planner import EnginePlan
from inferlab.planning.specs import GIB


def _command(argv: tuple[str, ...]) -> str:
    return shlex.join(argv)


def plan_document(plan: EnginePlan) -> dict[str, Any]:
    spec = plan.spec
    p = spec.parallel
    return {
        "name": spec.name, "engine": spec.engine, "model": spec.model, "fits": plan.fits,
        "parallel": {"tensor": p.tensor, "pipeline": p.pipeline, "nodes": p.nodes, "rpc_workers": p.rpc_workers,
                     "gpus_per_node": spec.resources.gpus},
        "quantization": spec.quantization, "kv_cache_dtype": spec.kv_cache_dtype,
        "kv_cache_gib_per_gpu": round(plan.kv_cache_gib_per_rank, 2), "max_sequences": spec.max_sequences,
        "context": spec.context, "gpu_memory_utilization": spec.gpu_memory_utilization,
        "memory_gib_per_gpu": {"weights": round(plan.memory.weights / GIB, 2),
                               "activations": round(plan.memory.compute / GIB, 2),
                               "runtime": round(plan.memory.overhead / GIB, 2),
                               "capacity": round(plan.memory.capacity / GIB, 2)},
        "predicted": {"tokens_per_s_per_stream": round(plan.tokens_per_s, 2),
                      "ttft_s": round(plan.ttft_s, 4) if plan.ttft_s is not None else None},
        "commands": [{"rank": rank.index, "role": rank.role, "argv": list(rank.argv)} for rank in plan.group.ranks],
        "why": list(plan.reasons),
    }


def plan_text(plan: EnginePlan) -> str:
    spec = plan.spec
    p = spec.parallel
    split = (f"{p.rpc_workers} rpc-server workers + leader" if spec.engine == "llama.cpp" and p.rpc_workers
             else f"TP {p.tensor} x PP {p.pipeline} on {p.nodes} node(s)")
    lines = [
        (f"{spec.name} on {spec.engine}: {split}, {spec.resources.gpus} GPU(s) per node"
         + ("" if plan.fits else "  [DOES NOT FIT]")),
        (f"  quantisation {spec.quantization or 'none (as stored)'}, KV cache {spec.kv_cache_dtype or 'f16'},"
         f" {plan.kv_cache_gib_per_rank:.1f} GiB KV per GPU, {spec.max_sequences} sequences x {spec.context:,} tokens"),
        "", "commands:",
    ]
    for rank in plan.group.ranks:
        lines.append(f"  [{rank.role} {rank.index}] {_command(rank.argv)}")
    lines += ["", "why:"] + [f"  - {reason}" for reason in plan.reasons]
    return "\n".join(lines)
