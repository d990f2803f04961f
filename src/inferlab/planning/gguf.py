"""A small reader for GGUF headers: metadata key/values and tensor shapes, never tensor data.

Layout (little-endian): magic ``GGUF``, uint32 version (2 or 3), uint64 tensor count, uint64
key/value count, the key/values (string key, uint32 value type, value), then one record per
tensor (name, uint32 n_dims, uint64 dims, uint32 ggml type, uint64 offset); tensor data starts at
the next multiple of ``general.alignment`` (default 32).

:func:`model_from_gguf` turns a file into a :class:`~inferlab.planning.catalogue.ModelSpec` whose
weight bytes are the file's real tensor bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import model_from_raw
from inferlab.planning.specs import ModelSpec

MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_KEEP_ARRAY_ITEMS = 1024  # longer arrays (vocabularies) are summarised by their length

#: ``general.file_type`` values (llama.h ``llama_ftype``) → InferLab weight-format names.
FILE_TYPES: Mapping[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}


@dataclass(frozen=True)
class ArraySummary:
    item_type: int
    length: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: Mapping[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int

    @property
    def parameters(self) -> int:
        return sum(t.elements for t in self.tensors)


class _Reader:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        raw = self.stream.read(size)
        if len(raw) != size:
            raise InvalidRequest("GGUF file is truncated", param="gguf")
        return struct.unpack(fmt, raw)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        raw = self.stream.read(length)
        if len(raw) != length:
            raise InvalidRequest("GGUF file is truncated", param="gguf")
        return raw.decode("utf-8", errors="replace")

    def value(self, value_type: int) -> Any:
        if value_type in _SCALARS:
            return self.unpack(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            item_type, length = self.unpack("<I"), self.unpack("<Q")
            if length > _KEEP_ARRAY_ITEMS:
                self.skip(item_type, length)
                return ArraySummary(item_type, length)
            return [self.value(item_type) for _ in range(length)]
        raise InvalidRequest(f"GGUF value type {value_type} is not valid", param="gguf")

    def skip(self, item_type: int, length: int) -> None:
        if item_type in _SCALARS:
            self.stream.seek(struct.calcsize(_SCALARS[item_type]) * length, 1)
            return
        for _ in range(length):
            if item_type == _STRING:
                self.stream.seek(self.unpack("<Q"), 1)
            else:
                self.value(item_type)


def read_gguf_header(stream: BinaryIO) -> GGUFHeader:
    """Parse magic, version, metadata and tensor infos from a binary stream positioned at 0."""
    reader = _Reader(stream)
    if stream.read(4) != MAGIC:
        raise InvalidRequest("not a GGUF file (bad magic)", param="gguf")
    version = reader.unpack("<I")
    if version not in (2, 3):
        raise InvalidRequest(f"unsupported GGUF version {version}; valid choices: 2, 3", param="gguf")
    n_tensors, n_kv = reader.unpack("<Q"), reader.unpack("<Q")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = reader.string()
        metadata[key] = reader.value(reader.unpack("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = reader.string()
        dims = tuple(reader.unpack("<Q") for _ in range(reader.unpack("<I")))
        tensors.append(TensorInfo(name, dims, reader.unpack("<I"), reader.unpack("<Q")))
    alignment = int(metadata.get("general.alignment", 32))
    data_offset = -(-stream.tell() // alignment) * alignment
    return GGUFHeader(version, metadata, tuple(tensors), data_offset)


def read_gguf(path: str | Path) -> tuple[GGUFHeader, int]:
    """The header of a GGUF file and the file's size in bytes."""
    file = Path(path)
    try:
        with file.open("rb") as stream:
            return read_gguf_header(stream), file.stat().st_size
    except OSError as exc:
        raise InvalidRequest(f"cannot read GGUF file {file}: {exc.strerror}", param="gguf") from exc


def model_from_gguf(path: str | Path, model_id: str | None = None) -> ModelSpec:
    header, size = read_gguf(path)
    return model_from_header(header, size, model_id or Path(path).stem, str(path))


def model_from_header(header: GGUFHeader, file_size: int, model_id: str, origin: str) -> ModelSpec:
    """Architecture numbers from ``{arch}.*`` keys; weight bytes = file size minus the header.

    Which layers use a sliding window is not in the metadata, so every layer is counted as full
    attention (an upper bound for the KV cache of iSWA models such as Gemma 2).
    """
    meta = header.metadata
    arch = meta.get("general.architecture")
    if not arch:
        raise InvalidRequest("GGUF metadata has no general.architecture", param="gguf")

    def key(name: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{name}", default)
        return max(value) if isinstance(value, list) else value

    hidden, heads = key("embedding_length"), key("attention.head_count")
    if not hidden or not heads or not key("block_count"):
        raise InvalidRequest(f"GGUF metadata lacks {arch}.embedding_length/block_count/head_count", param="gguf")
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = tokens.length if isinstance(tokens, ArraySummary) else len(tokens or []) or key("vocab_size", 0)
    kv_lora = key("attention.kv_lora_rank", 0)
    raw = {
        "id": model_id,
        "name": meta.get("general.name", model_id),
        "layers": key("block_count"),
        "hidden": hidden,
        "heads": heads,
        "kv_heads": key("attention.head_count_kv", heads),
        "head_dim": key("attention.key_length") or hidden // heads,
        "intermediate": key("feed_forward_length", 0),
        "vocab": vocab,
        "max_context": key("context_length", 0),
        "params_b": header.parameters / 1e9,
        "active_params_b": _active_parameters(header, key("expert_count", 0), key("expert_used_count", 0)) / 1e9,
        "tied_embeddings": not any(t.name == "output.weight" for t in header.tensors),
        "experts": key("expert_count", 0),
        "experts_active": key("expert_used_count", 0),
        "sliding_window": key("attention.sliding_window"),
        "attention": "mla" if kv_lora else "gqa",
        "kv_lora_rank": kv_lora,
        "qk_rope_head_dim": key("rope.dimension_count", 0) if kv_lora else 0,
        "weights_bytes": file_size - header.data_offset,
        "weights_format": FILE_TYPES.get(int(meta.get("general.file_type", -1)), None),
        "source": {"source": f"GGUF metadata of {origin}", "date": "file", "provenance": "P"},
    }
    return model_from_raw(raw)


def _active_parameters(header: GGUFHeader, experts: int, used: int) -> float:
    """Parameters read per token: expert tensors (``*_exps``) count ``used / experts`` of their size."""
    if not experts or not used:
        return float(header.parameters)
    expert = sum(t.elements for t in header.tensors if "_exps" in t.name)
    return header.parameters - expert + expert * used / experts
