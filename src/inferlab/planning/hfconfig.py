"""Model architecture from a Hugging Face ``config.json`` (dense, GQA, sliding window, MoE, MLA).

When the file gives no parameter count, it is derived from the shapes: embeddings (+ an untied
LM head), per layer the Q/K/V/O projections and a gated MLP (or routed + shared experts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import model_from_raw
from inferlab.planning.specs import ModelSpec


def model_from_hf_config(path: str | Path, model_id: str | None = None, params_b: float | None = None) -> ModelSpec:
    file = Path(path)
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"cannot read {file}: {exc.strerror}", param="hf_config") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{file} is not valid JSON: {exc}", param="hf_config") from exc
    return model_from_config(config, model_id or file.parent.name or "hf-model", str(file), params_b)


def model_from_config(config: Mapping[str, Any], model_id: str, origin: str, params_b: float | None = None) -> ModelSpec:
    cfg = dict(config.get("text_config") or config)  # multimodal configs nest the language model
    try:
        layers, hidden, heads = int(cfg["num_hidden_layers"]), int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    except KeyError as exc:
        raise InvalidRequest(f"config.json lacks {exc.args[0]}", param="hf_config") from exc
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    experts = int(cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts") or 0)
    active = int(cfg.get("num_experts_per_tok") or 0)
    layer_types = cfg.get("layer_types") or []
    sliding_layers = sum(1 for t in layer_types if t == "sliding_attention")
    window = cfg.get("sliding_window") if (sliding_layers or cfg.get("use_sliding_window", True)) else None
    if window and not layer_types:
        sliding_layers = layers if cfg.get("sliding_window_pattern") is None else layers // 2
    total, active_params = _count_params(cfg, layers, hidden, heads, kv_heads, head_dim, experts, active)
    raw = {
        "id": model_id,
        "layers": layers,
        "hidden": hidden,
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate": int(cfg.get("intermediate_size") or 0),
        "vocab": int(cfg.get("vocab_size") or 0),
        "tied_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "max_context": int(cfg.get("max_position_embeddings") or 0),
        "params_b": params_b or total / 1e9,
        "active_params_b": None if params_b else active_params / 1e9,
        "experts": experts,
        "experts_active": active,
        "attention": "mla" if cfg.get("kv_lora_rank") else "gqa",
        "kv_lora_rank": int(cfg.get("kv_lora_rank") or 0),
        "qk_rope_head_dim": int(cfg.get("qk_rope_head_dim") or 0),
        "sliding_window": int(window) if window else None,
        "sliding_window_layers": sliding_layers if window else 0,
        "native_dtype": _dtype(cfg.get("torch_dtype") or cfg.get("dtype")),
        "source": {"source": f"config.json {origin}", "date": "file", "provenance": "P"},
    }
    return model_from_raw(raw)


def _dtype(name: Any) -> str:
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(name), "bf16")


def _count_params(
    cfg: Mapping[str, Any], layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int, experts: int, active: int
) -> tuple[float, float]:
    vocab = int(cfg.get("vocab_size") or 0)
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)
    attention = (
        _mla_attention(cfg, hidden, heads) if cfg.get("kv_lora_rank")
        else hidden * head_dim * (2 * heads + 2 * kv_heads)
    )
    dense_ffn = 3 * hidden * int(cfg.get("intermediate_size") or 0)
    if not experts:
        per_layer = attention + dense_ffn
        return embeddings + layers * per_layer, embeddings + layers * per_layer
    expert_size = 3 * hidden * int(cfg.get("moe_intermediate_size") or cfg.get("intermediate_size") or 0)
    shared = int(cfg.get("n_shared_experts") or 0) * expert_size
    dense_layers = int(cfg.get("first_k_dense_replace") or 0)
    moe_layers = layers - dense_layers
    base = embeddings + layers * attention + dense_layers * dense_ffn + moe_layers * (shared + hidden * experts)
    return base + moe_layers * experts * expert_size, base + moe_layers * active * expert_size


def _mla_attention(cfg: Mapping[str, Any], hidden: int, heads: int) -> int:
    q_rank, kv_rank = int(cfg.get("q_lora_rank") or 0), int(cfg["kv_lora_rank"])
    nope, rope = int(cfg.get("qk_nope_head_dim") or 128), int(cfg.get("qk_rope_head_dim") or 64)
    v = int(cfg.get("v_head_dim") or 128)
    q = hidden * q_rank + q_rank * heads * (nope + rope) if q_rank else hidden * heads * (nope + rope)
    kv = hidden * (kv_rank + rope) + kv_rank * heads * (nope + v)
    return q + kv + heads * v * hidden
