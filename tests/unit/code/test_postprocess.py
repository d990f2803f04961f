from __future__ import annotations

from inferlab.code.postprocess import (
    clean_completion,
    drop_repetitions,
    stop_at_block_end,
    trim_suffix_overlap,
)


def test_single_line_mode_keeps_the_cursor_line() -> None:
    assert clean_completion("a, b)\n    return x", "print(", ")", single=True) == "a, b"


def test_multi_line_stops_where_the_block_ends() -> None:
    prefix = "def f(x):\n    if x:\n        "
    text = "return 1\n    return 2\n\ndef g():\n    pass"
    assert stop_at_block_end(text, prefix) == "return 1"
    assert clean_completion("y = 1\n    z = 2\nprint(z)", "def f():\n    ", "", single=False) == "y = 1\n    z = 2"


def test_a_blank_line_after_a_block_opener_completes_the_body() -> None:
    assert stop_at_block_end("    return n\nprint(1)", "def f(n):\n") == "    return n"


def test_suffix_overlap_is_trimmed_mid_line_and_across_lines() -> None:
    assert trim_suffix_overlap("a, b)", ")") == "a, b"
    assert trim_suffix_overlap("x = 1\nreturn x\n}", "\nreturn x\n}") == "x = 1"
    assert trim_suffix_overlap("value", ") + 1") == "value"


def test_repetitions_and_empty_results_are_dropped() -> None:
    assert drop_repetitions("x += 1\nx += 1\nx += 1\nx += 1", "") == "x += 1\nx += 1"
    assert drop_repetitions("total = 0\nfor v in vs:", "    for v in vs:") == "total = 0"
    assert clean_completion("   \n  ", "x = ", "", single=False) == ""
    assert clean_completion(")", "f(", ")", single=True) == ""


def test_telemetry_is_per_tenant_and_counts_one_decision_per_completion() -> None:
    import pytest

    from inferlab.code.telemetry import CompletionTelemetry
    from inferlab.errors import NotFound

    telemetry = CompletionTelemetry(capacity=2)
    telemetry.issued("a", tenant="t1", model="m", language="python")
    with pytest.raises(NotFound):
        telemetry.record("a", "accept", tenant="t2")  # another tenant's id is unknown to it
    telemetry.record("a", "view", tenant="t1")
    telemetry.record("a", "accept", tenant="t1")
    telemetry.record("a", "reject", tenant="t1")  # decided already
    assert (telemetry.tally("m", "python").accept, telemetry.tally("m", "python").reject) == (1, 0)
    telemetry.issued("b", tenant="t1", model="m", language="python")
    telemetry.issued("c", tenant="t1", model="m", language="python")
    with pytest.raises(NotFound):
        telemetry.record("a", "view", tenant="t1")  # the oldest id left the bounded log
    assert telemetry.acceptance("python") == 1.0 and telemetry.acceptance("go") is None
