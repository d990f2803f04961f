"""KV cache per token, checked by hand against each model's config.json."""

from __future__ import annotations

import pytest

from inferlab.planning import Catalogue, kv_bytes_per_token, kv_cache_bytes, load_catalogue

KIB = 1024


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.mark.parametrize(
    ("model_id", "expected", "by_hand"),
    [
        ("llama-3.1-70b", 320 * KIB, "2 x 80 layers x 8 KV heads x 128 x 2 B"),
        ("qwen2.5-7b", 56 * KIB, "2 x 28 x 4 x 128 x 2 B"),
        ("phi-3-mini-4k", 384 * KIB, "2 x 32 x 32 (MHA) x 96 x 2 B"),
        ("llama-3.1-8b", 128 * KIB, "2 x 32 x 8 x 128 x 2 B"),
        ("llama-3.1-405b", 504 * KIB, "2 x 126 x 8 x 128 x 2 B"),
        ("smollm2-135m", 23040, "2 x 30 x 3 x 64 x 2 B"),
        ("gemma-2-9b", 336 * KIB, "2 x 42 x 8 x 256 x 2 B (before sliding windows)"),
        ("deepseek-v3", 70272, "MLA: 61 layers x (512 latent + 64 rope) x 2 B"),
    ],
)
def test_kv_bytes_per_token_fp16(catalogue: Catalogue, model_id: str, expected: int, by_hand: str) -> None:
    assert kv_bytes_per_token(catalogue.model(model_id), 2) == expected, by_hand


def test_quantised_kv_scales_by_bytes_per_element(catalogue: Catalogue) -> None:
    model = catalogue.model("llama-3.1-8b")
    q8 = catalogue.kv_dtype("q8_0").bytes_per_element
    q4 = catalogue.kv_dtype("q4_0").bytes_per_element
    assert kv_bytes_per_token(model, q8) == 2 * 32 * 8 * 128 * 34 / 32
    assert kv_bytes_per_token(model, q4) == 2 * 32 * 8 * 128 * 18 / 32
    assert kv_bytes_per_token(model, catalogue.kv_dtype("fp8").bytes_per_element) == 64 * KIB


def test_sliding_window_layers_hold_only_the_window(catalogue: Catalogue) -> None:
    gemma = catalogue.model("gemma-2-9b")
    per_layer_token = 2 * 8 * 256 * 2
    expected = (21 * 8192 + 21 * 4096) * per_layer_token  # 21 global + 21 local (4k window) layers
    assert kv_cache_bytes(gemma, 8192, 2) == expected
    assert round(expected / 2**30, 2) == 1.97
    # below the window every layer holds the whole context
    assert kv_cache_bytes(gemma, 2048, 2) == 2048 * kv_bytes_per_token(gemma, 2)


def test_tensor_parallel_splits_kv_heads_until_one_per_rank(catalogue: Catalogue) -> None:
    model = catalogue.model("llama-3.1-70b")  # 8 KV heads
    full = kv_bytes_per_token(model, 2)
    assert kv_bytes_per_token(model, 2, tensor_parallel=2) == full / 2
    assert kv_bytes_per_token(model, 2, tensor_parallel=8) == full / 8
    # TP 16 > 8 KV heads: each rank still holds one (replicated) head
    assert kv_bytes_per_token(model, 2, tensor_parallel=16) == full / 8


def test_pipeline_parallel_splits_layers(catalogue: Catalogue) -> None:
    model = catalogue.model("llama-3.1-70b")
    assert kv_bytes_per_token(model, 2, pipeline_parallel=4) == kv_bytes_per_token(model, 2) / 4


def test_mla_latent_is_replicated_on_every_tp_rank(catalogue: Catalogue) -> None:
    model = catalogue.model("deepseek-v3")
    assert kv_bytes_per_token(model, 2, tensor_parallel=8) == kv_bytes_per_token(model, 2)
