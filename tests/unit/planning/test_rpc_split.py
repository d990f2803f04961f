"""The planning toolkit's model of llama.cpp's RPC split: one round trip and the activations per worker."""

from __future__ import annotations

import pytest

from inferlab.planning.catalogue import load_catalogue
from inferlab.planning.rpc import rpc_split_tokens_per_s, rpc_step_overhead_s
from inferlab.planning.specs import Interconnect, SourceRef

LINK = Interconnect("test", "test link", "network", bandwidth_gbps=1.0, latency_s=50e-6, ref=SourceRef("test", "2026-12", "E"))


def test_each_worker_costs_a_round_trip_and_the_activations_both_ways() -> None:
    model = load_catalogue().model("smollm2-135m")  # hidden 576
    one = rpc_step_overhead_s(model, 1, LINK)
    assert one == pytest.approx(100e-6 + 2 * 576 * 4 / 1e9)
    assert rpc_step_overhead_s(model, 2, LINK) == pytest.approx(2 * one)
    assert rpc_step_overhead_s(model, 0, LINK) == 0.0
    assert rpc_step_overhead_s(model, 1, LINK, batch=8) > one


def test_a_split_is_never_faster_for_one_stream() -> None:
    model = load_catalogue().model("smollm2-135m")
    assert rpc_split_tokens_per_s(100.0, model, 0, LINK) == pytest.approx(100.0)
    assert rpc_split_tokens_per_s(100.0, model, 2, LINK) == pytest.approx(1 / (0.01 + 2 * (100e-6 + 4608 / 1e9)))
