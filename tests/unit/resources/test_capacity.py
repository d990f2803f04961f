"""Pool capacity from what engines report (the real llama-server is read in
tests/integration/resources/test_llamacpp_capacity.py)."""

from __future__ import annotations

from inferlab.resources import (
    CapacityOverride,
    PoolCapacity,
    ReplicaCapacity,
    capacity_of,
    llamacpp_capacity,
    sglang_capacity,
    vllm_capacity,
)
from inferlab.resources.capacity import metric_samples

# Two data-parallel engines of one vLLM server, in vLLM's own exposition format.
VLLM = """\
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",\
gpu_memory_utilization="0.9",num_cpu_blocks="None",num_gpu_blocks="27000",num_gpu_blocks_override="None"} 1.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="1",\
gpu_memory_utilization="0.9",num_cpu_blocks="None",num_gpu_blocks="26500",num_gpu_blocks_override="None"} 1.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama"} 3.0
"""

SGLANG = """\
# TYPE sglang:max_total_num_tokens gauge
sglang:max_total_num_tokens{model_name="qwen",dp_rank="0"} 471258.0
sglang:max_total_num_tokens_extra{model_name="qwen"} 5.0
sglang:token_usage{model_name="qwen"} 0.12
"""


def test_llamacpp_props_give_slots_times_the_per_slot_context() -> None:
    props = {"total_slots": 4, "default_generation_settings": {"n_ctx": 2048, "temperature": 0.8}}
    assert llamacpp_capacity(props) == ReplicaCapacity(4, 8192)


def test_llamacpp_props_without_the_figures_say_nothing() -> None:
    for props in ({}, {"total_slots": 4}, {"total_slots": 0, "default_generation_settings": {"n_ctx": 512}},
                  {"total_slots": True, "default_generation_settings": {"n_ctx": 512}}, [], None,
                  {"total_slots": "4", "default_generation_settings": {"n_ctx": 512}}):
        assert llamacpp_capacity(props) is None, props


def test_vllm_kv_tokens_are_blocks_times_block_size_over_every_engine() -> None:
    assert vllm_capacity(VLLM, max_num_seqs=256) == ReplicaCapacity(256, (27000 + 26500) * 16)
    unknown = 'vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0\n'
    assert vllm_capacity(unknown, 256) is None and vllm_capacity("", 256) is None


def test_sglang_kv_tokens_are_its_max_total_num_tokens() -> None:
    assert sglang_capacity(SGLANG, max_running_requests=128) == ReplicaCapacity(128, 471258)
    assert sglang_capacity("sglang:token_usage 0.1\n", 128) is None


def test_metric_labels_keep_escaped_quotes() -> None:
    text = 'm{a="x\\"y",b="2"} 3\nm 4\nmm 5\n'
    assert metric_samples(text, "m") == [({"a": 'x"y', "b": "2"}, 3.0), ({}, 4.0)]


def test_a_pool_sums_its_replicas_and_a_configured_value_wins_per_dimension() -> None:
    replicas = [ReplicaCapacity(4, 8192), ReplicaCapacity(256, 432000)]
    assert capacity_of(replicas) == PoolCapacity(260, 440192)
    assert capacity_of(replicas, overcommit=1.25, configured=CapacityOverride(sequences=64)) \
        == PoolCapacity(64, 440192, 1.25)
    assert capacity_of([], configured=CapacityOverride(8, 16384)) == PoolCapacity(8, 16384)
