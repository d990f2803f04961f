"""The browser package's pure parts: the plausibility of a report, the pacer, the memory of report
ids, the ledger id, and the server-fallback step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferlab.browser import MemoryReportPacer, MemorySeenReports, ServerFallbackPolicy
from inferlab.browser.catalogue import BrowserCatalogue, BrowserModel
from inferlab.browser.report import ImplausibleUsage, parse_report
from inferlab.browser.reports import ledger_id
from inferlab.config import BrowserModelSettings, TierSpec
from inferlab.errors import InvalidRequest, PermissionDenied
from inferlab.pipeline import Call, Reply
from inferlab.tenants.tier import Tier
from inferlab.types import Caller, InferenceResponse, RequestKind

NOW = 1_800_000_000.0
MODEL = BrowserModel("tiny", Path("/dev/null"), 10, "0" * 64, "tiny", 1.0, 15.0, 100.0, 512)


class Catalogue(BrowserCatalogue):
    def __init__(self) -> None:
        super().__init__([BrowserModelSettings(name="tiny")])
        self._models = {"tiny": MODEL}


def parse(**fields: Any) -> Any:
    body = {"id": "evt-00000001", "model": "tiny", "created": NOW, "prompt_tokens": 10, "completion_tokens": 11,
            "duration_ms": 1000.0, "ttft_ms": 100.0, **fields}
    return parse_report(body, Catalogue(), now=NOW, max_age_s=3600, skew_s=60)


def test_a_plausible_report_is_parsed() -> None:
    usage = parse(status="disconnect", engine="wllama")
    assert (usage.model, usage.completion_tokens, usage.status, usage.engine) == (MODEL, 11, "disconnect", "wllama")


@pytest.mark.parametrize("fields", [
    {"completion_tokens": 200, "duration_ms": 1000.0, "ttft_ms": 0.0},  # 199 tokens/s decoding > 100
    {"completion_tokens": 5, "duration_ms": 100.0, "ttft_ms": 100.0},  # 4 tokens decoded in no time
    {"prompt_tokens": 500, "completion_tokens": 13},  # past the 512-token context
    {"created": NOW + 120}, {"created": NOW - 7200},
])
def test_an_implausible_report_is_422(fields: dict[str, Any]) -> None:
    with pytest.raises(ImplausibleUsage) as refused:
        parse(**fields)
    assert refused.value.status == 422 and refused.value.code == "implausible_usage"


def test_one_token_needs_no_decoding_time_and_the_limit_itself_passes() -> None:
    assert parse(completion_tokens=1, duration_ms=5.0, ttft_ms=5.0).completion_tokens == 1
    assert parse(completion_tokens=101, duration_ms=1100.0, ttft_ms=100.0).completion_tokens == 101  # 100 tokens/s


@pytest.mark.parametrize(("fields", "param"), [
    ({"prompt_tokens": True}, "prompt_tokens"), ({"duration_ms": float("nan")}, "duration_ms"),
    ({"duration_ms": 4e6}, "duration_ms"), ({"status": "great"}, "status"), ({"engine": "onnx"}, "engine"),
    ({"request_id": ""}, "request_id"), ({"id": "has space 123"}, "id"), ({"model": 3}, "model"),
])
def test_a_malformed_report_names_its_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(**fields)
    assert refused.value.status == 400 and refused.value.param == param
    with pytest.raises(InvalidRequest):
        parse_report([1], Catalogue(), now=NOW, max_age_s=1, skew_s=1)


def test_the_pacer_allows_a_burst_then_the_rate() -> None:
    pacer = MemoryReportPacer(per_minute=60, burst=2)
    assert [pacer.take("k", 0.0), pacer.take("k", 0.0)] == [0.0, 0.0]
    assert pacer.take("k", 0.0) == pytest.approx(1.0)
    assert pacer.take("k", 0.5) == pytest.approx(0.5)
    assert pacer.take("k", 1.0) == 0.0  # one token refilled in a second
    assert pacer.take("other", 0.0) == 0.0


def test_the_pacer_forgets_idle_subjects_beyond_its_bound() -> None:
    pacer = MemoryReportPacer(per_minute=60, burst=1, max_subjects=2)
    for subject in ("a", "b", "c"):
        pacer.take(subject, 0.0)
    assert pacer.take("a", 0.0) == 0.0  # forgotten: a full bucket again


def test_seen_reports_are_bounded_and_can_be_forgotten() -> None:
    seen = MemorySeenReports(capacity=2)
    assert [seen.first_time(i, 0) for i in ("a", "a", "b", "c", "a")] == [True, False, True, True, True]
    seen.forget("c")
    assert seen.first_time("c", 0) is True


def test_the_ledger_id_is_per_tenant_and_fits_the_store() -> None:
    assert ledger_id("t1", "evt-1") == ledger_id("t1", "evt-1") != ledger_id("t2", "evt-1")
    assert len(ledger_id("t" * 64, "e" * 64)) <= 64


async def test_the_fallback_step_refuses_a_marked_call_from_a_tier_not_listed() -> None:
    policy = ServerFallbackPolicy(["pro"])
    reply = Reply(response=InferenceResponse({"ok": True}, None))

    async def answer(_: Call) -> Reply:
        return reply

    def call(tier: str, fallback: str | None) -> Call:
        made = Call("r", RequestKind.CHAT, "/v1/chat/completions", "m", {}, Caller(), fallback=fallback)
        made.tier = Tier.of(tier, TierSpec())
        return made

    assert await policy(call("pro", "wasm_unavailable"), answer) is reply
    assert await policy(call("free", None), answer) is reply
    with pytest.raises(PermissionDenied) as refused:
        await policy(call("free", "wasm_unavailable"), answer)
    assert refused.value.code == "server_fallback_not_in_tier"
    assert ServerFallbackPolicy(None).allows("anything")
