"""Models from a Hugging Face config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import kv_bytes_per_token, kv_cache_bytes, model_from_config, model_from_hf_config

LLAMA_31_8B = {
    "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
    "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}
DEEPSEEK_V3 = {
    "num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128, "num_key_value_heads": 128,
    "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "first_k_dense_replace": 3, "vocab_size": 129280, "max_position_embeddings": 163840,
}


def test_dense_gqa_model_and_parameter_count() -> None:
    model = model_from_config(LLAMA_31_8B, "l8", "test")
    assert model.params_b == pytest.approx(8.03, abs=0.01)
    assert model.head_dim == 128 and model.kv_heads == 8 and model.native_dtype == "bf16"
    assert kv_bytes_per_token(model, 2) == 128 * 1024


def test_mla_moe_model() -> None:
    model = model_from_config(DEEPSEEK_V3, "ds", "test")
    assert model.attention == "mla"
    assert model.params_b == pytest.approx(671, rel=0.01)
    assert model.active_params_b == pytest.approx(37, rel=0.03)
    assert kv_bytes_per_token(model, 2) == 70272


def test_missing_kv_heads_means_mha_and_layer_types_mean_sliding_layers() -> None:
    cfg = {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "vocab_size": 1000,
           "intermediate_size": 512, "sliding_window": 128,
           "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]}
    model = model_from_config(cfg, "swa", "test")
    assert model.kv_heads == 4 and model.sliding_window_layers == 2
    per_layer_token = 2 * 4 * 64 * 2
    assert kv_cache_bytes(model, 1024, 2) == (2 * 1024 + 2 * 128) * per_layer_token


def test_file_reading_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_31_8B), encoding="utf-8")
    assert model_from_hf_config(path, "mine").id == "mine"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        model_from_hf_config(path)
    path.write_text(json.dumps({"hidden_size": 4}), encoding="utf-8")
    with pytest.raises(InvalidRequest, match="num_hidden_layers"):
        model_from_hf_config(path)
