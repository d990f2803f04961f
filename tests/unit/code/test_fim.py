from __future__ import annotations

import pytest

from inferlab.code.fim import FIM_TEMPLATES, ContextFile, apply_fim, fim_template
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


@pytest.mark.parametrize(("name", "rendered"), [
    ("qwen2.5-coder", "<|fim_prefix|>A<|fim_suffix|>B<|fim_middle|>"),
    ("starcoder", "<fim_prefix>A<fim_suffix>B<fim_middle>"),
    ("starcoder2", "<fim_prefix>A<fim_suffix>B<fim_middle>"),
    ("granite-code", "<fim_prefix>A<fim_suffix>B<fim_middle>"),
    ("codellama", "<PRE> A <SUF>B <MID>"),
    ("deepseek-coder", "<｜fim▁begin｜>A<｜fim▁hole｜>B<｜fim▁end｜>"),
    ("deepseek-coder-v2", "<｜fim▁begin｜>A<｜fim▁hole｜>B<｜fim▁end｜>"),
    ("codestral", "[SUFFIX]B[PREFIX]A"),
    ("codegemma", "<|fim_prefix|>A<|fim_suffix|>B<|fim_middle|>"),
])
def test_every_family_renders_its_documented_template_byte_for_byte(name: str, rendered: str) -> None:
    template = fim_template(name)
    assert template.render("A", "B") == rendered
    assert template.render("A", "B").encode() == rendered.encode()  # fullwidth bars and ▁ kept as UTF-8
    assert template.template == rendered.replace("A", "{prefix}").replace("B", "{suffix}")
    assert set(template.special) <= set(template.stop) or name in ("codellama", "codestral")


def test_codestral_is_suffix_first_with_no_middle_token() -> None:
    codestral = fim_template("codestral")
    assert codestral.order == "spm" and codestral.middle_token == ""
    assert [text for special, text in codestral.segments("p", "s") if special] == ["[SUFFIX]", "[PREFIX]"]


def test_codellama_spaces_belong_to_the_text_not_the_sentinels() -> None:
    pieces = fim_template("codellama").segments("def f(", "\n")
    assert pieces == [(True, "<PRE>"), (False, " def f( "), (True, "<SUF>"), (False, "\n "), (True, "<MID>")]


def test_repository_context_layouts() -> None:
    files = [ContextFile("lib/a.py", "def a():\n    return 1")]
    qwen = fim_template("qwen2.5-coder").render_with_context("x = a(", ")", files, path="main.py", repo="demo")
    assert qwen == ("<|repo_name|>demo\n<|file_sep|>lib/a.py\ndef a():\n    return 1\n<|file_sep|>main.py\n"
                    "<|fim_prefix|>x = a(<|fim_suffix|>)<|fim_middle|>")
    codestral = fim_template("codestral").render_with_context("x = a(", ")", files, path="main.py")
    assert codestral == "[SUFFIX])[PREFIX]+++++ lib/a.py\ndef a():\n    return 1\n+++++ main.py\nx = a("
    assert fim_template("deepseek-coder").render_with_context("p", "s") == fim_template("deepseek-coder").render("p", "s")
