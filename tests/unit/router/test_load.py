from __future__ import annotations

from inferlab.router import parse_load, parse_prometheus

VLLM = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 7.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.42
vllm:prompt_tokens_total{model_name="m"} 1234.0
"""
SGLANG = """sglang:num_running_reqs{model_name="m"} 4
sglang:num_queue_reqs{model_name="m"} 1
sglang:token_usage{model_name="m"} 0.25
"""
LLAMACPP = """# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
llamacpp:requests_deferred 5
llamacpp:prompt_tokens_total 99
"""


def test_prometheus_text_sums_label_sets() -> None:
    values = parse_prometheus(VLLM)
    assert values["vllm:num_requests_running"] == 5.0 and values["vllm:prompt_tokens_total"] == 1234.0


def test_vllm() -> None:
    load = parse_load(VLLM, None, now=1.0)
    assert load is not None and (load.running, load.waiting, load.kv_cache) == (5.0, 7.0, 0.42)


def test_sglang() -> None:
    load = parse_load(SGLANG, None, now=1.0)
    assert load is not None and (load.running, load.waiting, load.kv_cache) == (4, 1, 0.25)


def test_llamacpp_metrics_and_slots() -> None:
    load = parse_load(LLAMACPP, None, now=1.0)
    assert load is not None and (load.running, load.waiting, load.kv_cache) == (2, 5, None)
    slots = [{"id": 0, "is_processing": True}, {"id": 1, "is_processing": True}, {"id": 2, "is_processing": False}]
    load = parse_load(LLAMACPP.replace("requests_processing 2", "requests_processing 0"), slots, now=2.0)
    assert load is not None and (load.running, load.waiting, load.scraped_at) == (2, 5, 2.0)


def test_unknown_or_empty_metrics() -> None:
    assert parse_load("some_other_metric 1\n", None, now=0) is None
    assert parse_load(None, None, now=0) is None
