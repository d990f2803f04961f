"""The seed's four deployment scenarios as deployment plans (the guide's scenarios 1-4)."""

from __future__ import annotations

from inferlab.coordinator.planner import PlanRequest

SEED_DEPLOYMENTS: dict[str, PlanRequest] = {
    "7b-single-gpu": PlanRequest("qwen2.5-7b", "rtx-3060-12gb", 1, "llama.cpp", "Q4_K_M"),
    "30b-single-gpu": PlanRequest("qwen2.5-coder-32b", "rtx-4090", 1, "llama.cpp", "Q4_K_M"),
    "70b-tp4": PlanRequest("llama-3.1-70b", "a100-80gb-sxm", 4, "vllm", "bf16"),
    # a 400B-class model over two 8-GPU nodes: tensor parallel 8 within each, pipeline parallel 2 across
    "400b-tp8-2-nodes": PlanRequest("llama-3.1-405b", "h100-sxm", 16, "vllm", "bf16"),
}
