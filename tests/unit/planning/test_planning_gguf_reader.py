"""The pure-Python GGUF header reader, on a synthetic file and on the shipped SmolLM2."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest

from inferlab.errors import InvalidRequest
from inferlab.planning import kv_bytes_per_token, model_from_gguf, read_gguf_header
from inferlab.planning.gguf import ArraySummary, model_from_header


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, value: Any) -> bytes:
    if isinstance(value, str):
        return _string(key) + struct.pack("<I", 8) + _string(value)
    if isinstance(value, list):
        body = b"".join(_string(v) for v in value)
        return _string(key) + struct.pack("<IIQ", 9, 8, len(value)) + body
    return _string(key) + struct.pack("<II", 4, value)


def synthetic_gguf(tokens: int = 2000) -> bytes:
    kvs = [
        ("general.architecture", "llama"), ("general.name", "Tiny"), ("general.file_type", 15),
        ("llama.block_count", 4), ("llama.embedding_length", 256), ("llama.attention.head_count", 8),
        ("llama.attention.head_count_kv", 2), ("llama.feed_forward_length", 1024), ("llama.context_length", 4096),
        ("tokenizer.ggml.tokens", [f"t{i}" for i in range(tokens)]),
    ]
    tensors = [("token_embd.weight", (256, tokens), 12), ("blk.0.attn_q.weight", (256, 256), 12)]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    out += b"".join(_kv(k, v) for k, v in kvs)
    for name, shape, ggml_type in tensors:
        out += _string(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", ggml_type, 0)
    return out + b"\0" * (-len(out) % 32) + b"\1" * 1000


def test_synthetic_header() -> None:
    data = synthetic_gguf()
    header = read_gguf_header(io.BytesIO(data))
    assert header.version == 3
    assert header.metadata["llama.block_count"] == 4
    assert header.metadata["tokenizer.ggml.tokens"] == ArraySummary(8, 2000)  # long arrays are summarised
    assert header.parameters == 256 * 2000 + 256 * 256
    assert header.data_offset == len(data) - 1000
    model = model_from_header(header, len(data), "tiny", "memory")
    assert (model.layers, model.hidden, model.heads, model.kv_heads, model.head_dim) == (4, 256, 8, 2, 32)
    assert (model.vocab, model.max_context, model.weights_format, model.weights_bytes) == (2000, 4096, "Q4_K_M", 1000)
    assert model.tied_embeddings


def test_bad_magic_and_truncation() -> None:
    with pytest.raises(InvalidRequest, match="not a GGUF"):
        read_gguf_header(io.BytesIO(b"GGML" + b"\0" * 20))
    with pytest.raises(InvalidRequest, match="truncated"):
        read_gguf_header(io.BytesIO(synthetic_gguf()[:60]))
    with pytest.raises(InvalidRequest, match="version"):
        read_gguf_header(io.BytesIO(b"GGUF" + struct.pack("<IQQ", 9, 0, 0)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read"):
        model_from_gguf(tmp_path / "absent.gguf")


def test_real_smollm2_file(smollm2_gguf: Path) -> None:
    model = model_from_gguf(smollm2_gguf)
    assert (model.layers, model.hidden, model.heads, model.kv_heads, model.head_dim) == (30, 576, 9, 3, 64)
    assert model.vocab == 49152 and model.weights_format == "Q4_1"
    assert model.params_b == pytest.approx(0.1345, abs=0.001)
    assert model.weights_bytes == pytest.approx(92.10 * 2**20, rel=1e-3)  # llama.cpp reports 92.10 MiB
    assert kv_bytes_per_token(model, 2) == 23040
