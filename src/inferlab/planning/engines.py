"""How each inference engine spends device memory and schedules work.

Immutable profiles only; the numbers they point at live in the catalogue (``defaults``) with their
sources, except the llama.cpp CPU overhead, which InferLab measured itself (see
:data:`LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from inferlab.errors import InvalidRequest

#: Process memory of ``llama-server`` beyond the model file, the KV cache and the reserved compute
#: buffer, on the CPU backend: code and shared libraries (~10 MiB, file-backed), heap (vocabulary,
#: HTTP server, thread pool), less the compute-buffer pages that are reserved but not yet touched.
#: Measured by InferLab on 2026-11-26: llama.cpp 0c1e570 (vendored in llama-cpp-python 0.3.36),
#: x86-64 Linux, ``--threads 2 -np 1 -c 512`` f16 KV, SmolLM2-135M-Instruct Q4_1: VmRSS after
#: GET /health = 137.07 MiB (mean of 3 runs: 137.11, 137.17, 136.94), minus tensor bytes 92.10,
#: KV cache 11.25 and compute reserve 14.19 MiB (formula in memory.py) = 19.5 MiB.
#: One constant for every context size and KV type; the test at other sizes checks it.
LLAMA_CPP_CPU_RUNTIME_OVERHEAD_BYTES = 19.5 * 1024**2

#: llama.cpp's physical batch (``--ubatch-size`` default), which sizes its compute buffer.
LLAMA_CPP_DEFAULT_UBATCH = 512

Family = Literal["llama_cpp", "batched_server"]
PoolMode = Literal["none", "of_total", "of_free"]
MultiDevice = Literal["layer_split", "tensor_parallel"]


@dataclass(frozen=True)
class EngineProfile:
    name: str
    family: Family  # selects the decode-efficiency table
    pool_mode: PoolMode  # vLLM: fraction of total memory; TensorRT-LLM: fraction of what is free
    pool_fraction_key: str | None  # catalogue default holding that fraction
    multi_device: MultiDevice  # what several devices mean by default
    default_max_batch: int
    runtime: str = ""  # the implementation underneath (NIM runs TensorRT-LLM): selects fixed-latency constants


_VLLM = EngineProfile("vllm", "batched_server", "of_total", "gpu_memory_utilization_vllm", "tensor_parallel", 256, "vllm")
_TRT = EngineProfile("trt-llm", "batched_server", "of_free", "free_gpu_memory_fraction_trtllm", "tensor_parallel", 2048,
                     "trt-llm")

ENGINES: Mapping[str, EngineProfile] = MappingProxyType(
    {
        "llama.cpp": EngineProfile("llama.cpp", "llama_cpp", "none", None, "layer_split", 1, "llama.cpp"),
        "ollama": EngineProfile("ollama", "llama_cpp", "none", None, "layer_split", 1, "llama.cpp"),
        "vllm": _VLLM,
        "sglang": EngineProfile("sglang", "batched_server", "of_total", "gpu_memory_utilization_vllm", "tensor_parallel", 256,
                                "sglang"),
        "tgi": EngineProfile("tgi", "batched_server", "of_total", "gpu_memory_utilization_vllm", "tensor_parallel", 256, "tgi"),
        "jetstream": EngineProfile(
            "jetstream", "batched_server", "of_total", "gpu_memory_utilization_vllm", "tensor_parallel", 256, "jetstream"
        ),
        "trt-llm": _TRT,
        "nim": EngineProfile("nim", "batched_server", "of_free", "free_gpu_memory_fraction_trtllm", "tensor_parallel", 2048,
                             "trt-llm"),
    }
)

_ALIASES = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "llama.cpp-vulkan": "llama.cpp",
            "llama.cpp-cpu": "llama.cpp", "tensorrt-llm": "trt-llm", "trtllm": "trt-llm", "vllm-tpu": "vllm"}


def engine_profile(name: str) -> EngineProfile:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in ENGINES:
        raise InvalidRequest(
            f"unknown engine {name!r}; valid choices: {', '.join(sorted(ENGINES))}", param="engine", code="unknown_engine"
        )
    return ENGINES[key]
