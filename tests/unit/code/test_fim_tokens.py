"""FIM prompts at token level, against the real tokenizers obtainable here (inferlab.testing.vocabularies):
every sentinel is the one special token the model was trained with, and the text between them
tokenises exactly as it does alone (no stray space, nothing merged across a sentinel).

Real tokenizers: Qwen (tokenizer.json, tokenizers), StarCoder2 and DeepSeek-Coder (llama.cpp's
vocabulary GGUFs, tokenised by llama.cpp), Codestral (mistral-common's v3 model and its own FIM
encoder). The families whose own tokenizer cannot be had here are checked against their
documented templates in test_fim.py; docs/architecture.md (*CodeLab*) lists them and why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferlab.code.fim import FIM_TEMPLATES, ContextFile, FimTemplate
from inferlab.code.gguf_fim import read_gguf_fim
from inferlab.testing.needs import require
from inferlab.testing.vocabularies import VocabularyUnavailable, llama_cpp_vocab, qwen_tokenizer_json

CASES = [
    ("def fib(n):\n    if n < 2:\n        return n\n    ", "\n\nprint(fib(10))\n"),
    ("x = ", " + 1  # trailing spaces  "),
    ("  indented", ""),
    ("", "only a suffix"),
    ("uses {prefix} and <b>tags</b>", "‖ ünïcode →"),
]

Tokenize = Callable[[str], list[int]]


def _expected(template: FimTemplate, prefix: str, suffix: str, special_id: Callable[[str], int],
              plain: Tokenize) -> list[int]:
    ids: list[int] = []
    for special, text in template.segments(prefix, suffix):
        ids += [special_id(text)] if special else plain(text)
    return ids


def _vocab(name: str) -> Path:
    try:
        return llama_cpp_vocab(name)
    except VocabularyUnavailable as exc:
        require(False, str(exc))
        raise


@pytest.fixture(scope="module")
def llama() -> Iterator[Callable[[str], Any]]:
    """llama.cpp's tokenizer over a vocabulary GGUF (one per name, closed after the module)."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python (the test extra) tokenises GGUF vocabularies")
    opened: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in opened:
            opened[name] = llama_cpp.Llama(model_path=str(_vocab(name)), vocab_only=True, verbose=False)
        return opened[name]

    yield get
    for model in opened.values():
        model.close()


def _gguf_tokens(name: str) -> list[str]:
    from gguf import GGUFReader

    return list(GGUFReader(str(_vocab(name))).fields["tokenizer.ggml.tokens"].contents())


@pytest.mark.parametrize(("family", "vocab", "expected_ids"), [
    ("starcoder2", "starcoder", {"<fim_prefix>": 1, "<fim_middle>": 2, "<fim_suffix>": 3}),
    # StarCoder 1 and Granite Code share these three ids with StarCoder2's vocabulary (Granite Code
    # uses the StarCoder tokenizer); their own tokenizer files are not obtainable here.
    ("starcoder", "starcoder", {"<fim_prefix>": 1, "<fim_middle>": 2, "<fim_suffix>": 3}),
    ("granite-code", "starcoder", {"<fim_prefix>": 1, "<fim_middle>": 2, "<fim_suffix>": 3}),
    ("deepseek-coder", "deepseek-coder", {"<｜fim▁hole｜>": 32015, "<｜fim▁begin｜>": 32016, "<｜fim▁end｜>": 32017}),
])
def test_llama_cpp_tokenises_the_prompt_to_the_trained_sentinels(
        llama: Callable[[str], Any], family: str, vocab: str, expected_ids: dict[str, int]) -> None:
    llm = llama(vocab)
    tokens = _gguf_tokens(vocab)
    template = FIM_TEMPLATES[family]

    def special_id(text: str) -> int:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert len(ids) == 1 and tokens[ids[0]] == text, f"{text!r} is not one token of {vocab}"
        return int(ids[0])

    for text, want in expected_ids.items():
        assert special_id(text) == want
    for prefix, suffix in CASES:
        rendered = template.render(prefix, suffix)
        got = llm.tokenize(rendered.encode(), add_bos=False, special=True)
        want = _expected(template, prefix, suffix, special_id,
                         lambda t: list(llm.tokenize(t.encode(), add_bos=False, special=False)))
        assert got == want, (family, prefix, suffix)
        assert llm.detokenize(got, special=True).decode() == rendered


def test_starcoder2_repository_layout_uses_its_own_separators(llama: Callable[[str], Any]) -> None:
    llm = llama("starcoder")
    template = FIM_TEMPLATES["starcoder2"]
    rendered = template.render_with_context("import a\n", "\n", [ContextFile("pkg/a.py", "def a(): ...")],
                                            path="pkg/b.py", repo="demo")
    ids = llm.tokenize(rendered.encode(), add_bos=False, special=True)
    assert ids[0] == 5 and ids.count(6) == 2  # <repo_name>, then <file_sep> before each file
    assert rendered.startswith("<repo_name>demo<file_sep>pkg/a.py\ndef a(): ...<file_sep><fim_prefix>pkg/b.py\nimport a\n")


@functools.cache
def _qwen() -> Any:
    tokenizers = pytest.importorskip("tokenizers")
    try:
        path = qwen_tokenizer_json()
    except VocabularyUnavailable as exc:
        require(False, str(exc))
        raise
    return tokenizers.Tokenizer.from_file(str(path))


def test_qwen_prompt_tokenises_to_its_fim_and_repository_ids() -> None:
    tok = _qwen()
    template = FIM_TEMPLATES["qwen2.5-coder"]
    documented = {"<|fim_prefix|>": 151659, "<|fim_middle|>": 151660, "<|fim_suffix|>": 151661,
                  "<|fim_pad|>": 151662, "<|repo_name|>": 151663, "<|file_sep|>": 151664}
    for text, want in documented.items():
        assert tok.token_to_id(text) == want

    def plain(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=False).ids)

    for prefix, suffix in CASES:
        rendered = template.render(prefix, suffix)
        got = plain(rendered)
        assert got == _expected(template, prefix, suffix, tok.token_to_id, plain)
        assert tok.decode(got, skip_special_tokens=False) == rendered
    repo = template.render_with_context("x = helper(", ")\n", [ContextFile("lib/h.py", "def helper(v):\n    return v\n")],
                                        path="main.py", repo="demo")
    ids = plain(repo)
    assert ids[0] == 151663 and ids.count(151664) == 2 and ids[-1] == 151660


def test_codestral_matches_mistral_commons_own_fim_encoding() -> None:
    """Codestral 22B v0.1 uses Mistral's v3 tokenizer: SPM order, no middle token. SentencePiece
    text after ``[SUFFIX]`` is encoded as a continuation (no leading space), after ``[PREFIX]`` as a
    start (mistral-common's rule, as CodeLlama's): with that rule our pieces give its exact ids."""
    pytest.importorskip("sentencepiece")
    mistral = pytest.importorskip("mistral_common.tokens.tokenizers.mistral")
    from mistral_common.protocol.fim.request import FIMRequest

    tokenizer = mistral.MistralTokenizer.v3()
    raw = tokenizer.instruct_tokenizer.tokenizer
    template = FIM_TEMPLATES["codestral"]
    assert template.render("P", "S") == "[SUFFIX]S[PREFIX]P" and template.middle_token == ""
    for prefix, suffix in [("def f(a, b):\n    ", "\n    return c\n"), ("x = ", "y"), ("import os\n", "")]:
        ids = [raw.bos_id]
        after = ""
        for special, text in template.segments(prefix, suffix):
            if special:
                ids.append(raw.get_special_token(text))
                after = text
            elif after == "[SUFFIX]":
                ids += raw.encode("☺" + text, bos=False, eos=False)[2:]
            else:
                ids += raw.encode(text, bos=False, eos=False)
        assert ids == tokenizer.encode_fim(FIMRequest(prompt=prefix, suffix=suffix)).tokens


@pytest.mark.parametrize("vocab", ["starcoder", "deepseek-coder"])
def test_the_generic_family_reads_the_sentinels_from_the_gguf(llama: Callable[[str], Any], vocab: str) -> None:
    pytest.importorskip("gguf")
    found = read_gguf_fim(_vocab(vocab))
    assert found is not None and found.complete
    llm = llama(vocab)
    template = found.template()
    rendered = template.render("a = 1\n", "\nb = 2\n")
    ids = llm.tokenize(rendered.encode(), add_bos=False, special=True)
    assert [ids[0], ids[-1]] == [found.ids["pre"], found.ids["mid"]] and found.ids["suf"] in ids
