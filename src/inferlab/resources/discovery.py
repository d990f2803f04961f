"""A pool's capacity read from its engines, for pools run by engines InferLab does not start:
llama-server's ``/props``, vLLM's and SGLang's ``/metrics`` (``capacity.py`` parses them). The
sequences vLLM and SGLang run at once are not in their metrics: they come from the configuration
(``resources.pools.<model>.sequences``, else ``max_concurrency_per_replica``). A replica that does
not answer is left out until the next refresh; a pool none of whose replicas answer is not
allocated yet.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from inferlab.config import ModelConfig, PoolCapacitySettings
from inferlab.resources.capacity import (
    CapacityOverride,
    ReplicaCapacity,
    capacity_of,
    llamacpp_capacity,
    sglang_capacity,
    vllm_capacity,
)
from inferlab.resources.model import PoolCapacity

DISCOVERABLE = frozenset({"llamacpp", "vllm", "sglang"})


def discoverable(model: ModelConfig) -> bool:
    return model.backend == "openai" and model.engine in DISCOVERABLE and bool(model.url or model.urls)


def _root(url: str) -> str:
    url = url.rstrip("/")
    return url.removesuffix("/v1")


async def _replica(session: aiohttp.ClientSession, model: ModelConfig, url: str, sequences: int) -> ReplicaCapacity | None:
    headers = {"Authorization": f"Bearer {model.api_key.get_secret_value()}"} if model.api_key else {}
    timeout = aiohttp.ClientTimeout(total=3)
    if model.engine == "llamacpp":
        async with session.get(_root(url) + "/props", headers=headers, timeout=timeout) as response:
            props: Any = await response.json(content_type=None) if response.status == 200 else None
        return llamacpp_capacity(props)
    async with session.get(_root(url) + "/metrics", headers=headers, timeout=timeout) as response:
        text = await response.text() if response.status == 200 else ""
    return vllm_capacity(text, sequences) if model.engine == "vllm" else sglang_capacity(text, sequences)


async def discover(session: aiohttp.ClientSession, model: ModelConfig, configured: PoolCapacitySettings | None,
                   logger: logging.Logger) -> PoolCapacity | None:
    """The pool's capacity from the replicas that answer (each dimension replaced where configured)."""
    sequences = (configured.sequences if configured is not None and configured.sequences is not None
                 else model.max_concurrency_per_replica or 0)
    found = []
    for url in model.urls or [model.url or ""]:
        try:
            replica = await _replica(session, model, url, sequences)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.warning("engine capacity unavailable", extra={"model": model.name, "error": type(exc).__name__})
            continue
        if replica is not None:
            found.append(replica)
    if not found:
        return None
    override = CapacityOverride(configured.sequences, configured.kv_tokens) if configured is not None else None
    capacity = capacity_of(found, overcommit=configured.overcommit if configured is not None else 1.0,
                           configured=override)
    return capacity if capacity.sequences and capacity.kv_tokens else None
