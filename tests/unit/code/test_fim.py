from __future__ import annotations

import pytest

from inferlab.code.fim import FIM_TEMPLATES, apply_fim, fim_template
from inferlab.errors import InvalidRequest, UnsupportedFeature


def test_templates_render_in_their_documented_order() -> None:
    assert fim_template("qwen2.5-coder").render("A", "B") == "<|fim_prefix|>A<|fim_suffix|>B<|fim_middle|>"
    assert fim_template("codestral").render("A", "B") == "[SUFFIX]B[PREFIX]A"
    assert fim_template("codellama").render("A", "B") == "<PRE> A <SUF>B <MID>"


def test_placeholders_inside_user_text_are_left_alone() -> None:
    rendered = fim_template("starcoder").render("x = '{suffix}'", "y = '{prefix}'")
    assert rendered == "<fim_prefix>x = '{suffix}'<fim_suffix>y = '{prefix}'<fim_middle>"


def test_apply_fim_builds_prompt_and_stop_words() -> None:
    body = {"model": "m", "prompt": "def f(", "suffix": "\n", "stop": "\n\n", "max_tokens": 5}
    rendered = apply_fim(body, FIM_TEMPLATES["starcoder"], "m")
    assert "suffix" not in rendered and rendered["prompt"].startswith("<fim_prefix>def f(")
    assert rendered["stop"][0] == "\n\n" and "<|endoftext|>" in rendered["stop"]
    assert body["suffix"] == "\n"  # the client's body is not mutated


def test_without_a_template_suffix_is_refused_not_dropped() -> None:
    with pytest.raises(UnsupportedFeature, match="fim_template"):
        apply_fim({"model": "m", "prompt": "a", "suffix": "b"}, None, "m")
    with pytest.raises(InvalidRequest):
        apply_fim({"model": "m", "prompt": ["a", "b"], "suffix": "b"}, FIM_TEMPLATES["starcoder"], "m")
    with pytest.raises(ValueError, match="choose one of"):
        fim_template("nope")
