"""A pool's capacity from its replicas: pure functions over what each engine reports.

    engine      sequences at once                 KV-cache tokens
    llama.cpp   /props total_slots                total_slots x default_generation_settings.n_ctx
                                                  (the per-slot context)
    vLLM        configured (--max-num-seqs)       vllm:cache_config_info{num_gpu_blocks, block_size}:
                                                  blocks x block size, summed over engines (data parallel)
    SGLang      configured (--max-running-requests)  sglang:max_total_num_tokens, summed over ranks
    any         configured                        configured

A pool's capacity is the sum over its replicas; a configured value, per dimension, replaces what
the replicas report (an engine that does not say, or an operator who knows better).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inferlab.errors import InvalidRequest
from inferlab.resources.model import PoolCapacity

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class ReplicaCapacity:
    """What one replica holds at once."""

    sequences: int
    kv_tokens: int

    def __post_init__(self) -> None:
        if self.sequences < 0 or self.kv_tokens < 0:
            raise InvalidRequest("a replica's capacity is never negative", param="capacity")


@dataclass(frozen=True, slots=True)
class CapacityOverride:
    """Configured values that replace the replicas' sum, per dimension (None: use the replicas')."""

    sequences: int | None = None
    kv_tokens: int | None = None


def capacity_of(replicas: Iterable[ReplicaCapacity], *, overcommit: float = 1.0,
                configured: CapacityOverride | None = None) -> PoolCapacity:
    """The pool's capacity: the sum over its replicas, each dimension replaced by ``configured``."""
    sequences = kv_tokens = 0
    for replica in replicas:
        sequences += replica.sequences
        kv_tokens += replica.kv_tokens
    if configured is not None:
        sequences = sequences if configured.sequences is None else configured.sequences
        kv_tokens = kv_tokens if configured.kv_tokens is None else configured.kv_tokens
    return PoolCapacity(sequences, kv_tokens, overcommit)


def managed_llamacpp(parallel: int, context_size: int) -> ReplicaCapacity:
    """A llama-server the coordinator starts: ``--parallel`` slots of ``context_size`` tokens each."""
    return ReplicaCapacity(parallel, parallel * context_size)


def llamacpp_capacity(props: Any) -> ReplicaCapacity | None:
    """llama.cpp ``GET /props``: slots x per-slot context; None when the answer lacks them."""
    if not isinstance(props, Mapping):
        return None
    slots = props.get("total_slots")
    settings = props.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    if not (isinstance(slots, int) and isinstance(n_ctx, int) and _count(slots) and _count(n_ctx)):
        return None
    return ReplicaCapacity(slots, slots * n_ctx)


def vllm_capacity(metrics_text: str, max_num_seqs: int) -> ReplicaCapacity | None:
    """vLLM ``/metrics``: the KV blocks of every engine times their block size; None when absent."""
    tokens = 0
    for labels, _ in metric_samples(metrics_text, "vllm:cache_config_info"):
        blocks, block_size = labels.get("num_gpu_blocks", ""), labels.get("block_size", "")
        if not (blocks.isdigit() and block_size.isdigit()):
            continue
        tokens += int(blocks) * int(block_size)
    return ReplicaCapacity(max_num_seqs, tokens) if tokens else None


def sglang_capacity(metrics_text: str, max_running_requests: int) -> ReplicaCapacity | None:
    """SGLang ``/metrics``: ``sglang:max_total_num_tokens`` summed over its series; None when absent."""
    tokens = sum(int(value) for _, value in metric_samples(metrics_text, "sglang:max_total_num_tokens"))
    return ReplicaCapacity(max_running_requests, tokens) if tokens else None


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of the metric ``name`` in a Prometheus text exposition, with its labels."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {key: raw.replace('\\"', '"').replace("\\\\", "\\") for key, raw in _LABEL.findall(match["labels"] or "")}
        samples.append((labels, value))
    return samples


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
