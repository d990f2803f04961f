"""Engine load signals, normalised: what each engine says about its own queue and KV cache.

Every engine reports load in its own dialect; ``parse_load`` turns any of them into one
``EngineLoad``. Pure functions over text and JSON: the scraper (``scraper.py``) does the I/O.

    engine      running                       waiting                        KV-cache use (0..1)
    vLLM        vllm:num_requests_running     vllm:num_requests_waiting      vllm:kv_cache_usage_perc
                                                                             (older: vllm:gpu_cache_usage_perc)
    SGLang      sglang:num_running_reqs       sglang:num_queue_reqs          sglang:token_usage
    llama.cpp   llamacpp:requests_processing  llamacpp:requests_deferred     llamacpp:kv_cache_usage_ratio
                (or busy slots from /slots)                                  (when the build still has it)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EngineKind = Literal["llamacpp", "vllm", "sglang", "ollama", "tgi", "jetstream", "generic"]

# metric name → EngineLoad field, per dialect; the first dialect that matches wins.
_DIALECTS: tuple[dict[str, str], ...] = (
    {
        "vllm:num_requests_running": "running",
        "vllm:num_requests_waiting": "waiting",
        "vllm:kv_cache_usage_perc": "kv_cache",
        "vllm:gpu_cache_usage_perc": "kv_cache",
    },
    {
        "sglang:num_running_reqs": "running",
        "sglang:num_queue_reqs": "waiting",
        "sglang:token_usage": "kv_cache",
    },
    {
        "llamacpp:requests_processing": "running",
        "llamacpp:requests_deferred": "waiting",
        "llamacpp:kv_cache_usage_ratio": "kv_cache",
    },
    {  # TGI
        "tgi_batch_current_size": "running",
        "tgi_queue_size": "waiting",
    },
)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One replica's load as its engine last reported it (``None``: the engine does not say)."""

    running: float = 0.0
    waiting: float = 0.0
    kv_cache: float | None = None
    scraped_at: float = 0.0  # monotonic seconds; 0 = never scraped

    @property
    def queued(self) -> float:
        return self.running + self.waiting

    def to_dict(self) -> dict[str, Any]:
        return {"running": self.running, "waiting": self.waiting, "kv_cache": self.kv_cache}


UNKNOWN_LOAD = EngineLoad()


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum of the samples of each metric family in a Prometheus text exposition (labels dropped).

    Summing across label sets covers engines that report one series per model or per engine rank.
    """
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        if brace >= 0:
            name = line[:brace]
            rest = line[line.rfind("}") + 1:].split()
        else:
            name, _, tail = line.partition(" ")
            rest = tail.split()
        if not rest:
            continue
        try:
            value = float(rest[0])
        except ValueError:
            continue
        values[name] = values.get(name, 0.0) + value
    return values


def load_from_metrics(samples: dict[str, float], now: float) -> EngineLoad | None:
    """The ``EngineLoad`` in a set of scraped samples, in whichever dialect they are; None if none."""
    for dialect in _DIALECTS:
        found = {field: samples[name] for name, field in dialect.items() if name in samples}
        if found:
            kv = found.get("kv_cache")
            if kv is not None and kv > 1.0:  # some versions report percent
                kv = kv / 100.0
            return EngineLoad(found.get("running", 0.0), found.get("waiting", 0.0), kv, now)
    return None


def load_from_llamacpp_slots(slots: Any, now: float, previous: EngineLoad | None = None) -> EngineLoad | None:
    """llama.cpp ``/slots``: busy slots are the running requests; waiting comes from ``/metrics``."""
    if not isinstance(slots, list):
        return None
    busy = sum(1 for slot in slots if isinstance(slot, dict) and slot.get("is_processing"))
    waiting = previous.waiting if previous is not None else 0.0
    kv = previous.kv_cache if previous is not None else None
    return EngineLoad(float(busy), waiting, kv, now)


def parse_load(metrics_text: str | None, slots: Any, now: float) -> EngineLoad | None:
    """Combine what an engine exposes (``/metrics`` text, llama.cpp ``/slots`` JSON) into one load."""
    load = load_from_metrics(parse_prometheus(metrics_text), now) if metrics_text else None
    if slots is not None:
        return load_from_llamacpp_slots(slots, now, load) or load
    return load
