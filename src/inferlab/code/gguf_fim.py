"""The generic FIM family: the sentinels a GGUF model file declares itself.

llama.cpp's converter writes ``tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id`` for models
trained with FIM; older files only have the tokens, which llama.cpp then recognises by their text
(``<|fim_prefix|>``, ``<fim_prefix>``, ``<PRE>``, ``<｜fim▁begin｜>`` ...). This module does the
same, so a model's own file decides its template whenever it can: the declared ids first, then
the known spellings. Needs the ``gguf`` package (the ``code`` extra); reading is lazy (memory-mapped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferlab.code.fim import FimTemplate, RepoFormat

KEYS = ("pre", "suf", "mid", "pad", "rep", "sep")

# llama.cpp's own fall-back spellings (llama-vocab.cpp), the same order of preference
_KNOWN: dict[str, tuple[str, ...]] = {
    "pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "▁<PRE>", "<｜fim▁begin｜>"),
    "suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "▁<SUF>", "<｜fim▁hole｜>"),
    "mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "▁<MID>", "<｜fim▁end｜>"),
    "pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"),
    "rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "sep": ("<|file_sep|>", "<file_sep>", "<|file_separator|>"),
}
_EOG = ("<|endoftext|>", "<|im_end|>", "<|EOT|>", "<EOT>", "<|eot_id|>", "<end_of_turn>", "</s>")


@dataclass(frozen=True, slots=True)
class GgufFim:
    """The FIM tokens of one GGUF: id and text per role (``pre``... ``sep``), and how they were found."""

    ids: dict[str, int]
    texts: dict[str, str]
    declared: bool  # from tokenizer.ggml.fim_*_token_id, not guessed from the token texts
    eog: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return all(role in self.ids for role in ("pre", "suf", "mid"))

    def template(self, name: str = "gguf") -> FimTemplate:
        t = self.texts
        repo = RepoFormat("qwen", t["rep"], t["sep"]) if "rep" in t and "sep" in t else RepoFormat()
        stop = tuple(dict.fromkeys([*self.eog, *(t[r] for r in ("pre", "suf", "mid", "pad", "rep", "sep") if r in t)]))
        return FimTemplate(name, t["pre"], t["suf"], t["mid"], "psm", stop, repo, (t["pre"], t["suf"], t["mid"]))


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def read_gguf_fim(path: str | Path) -> GgufFim | None:
    """The FIM tokens ``path`` declares or contains, or None when it has no prefix/suffix/middle set."""
    from gguf import GGUFReader  # the `code` extra

    reader = GGUFReader(str(path))
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens") or []
    ids: dict[str, int] = {}
    for role in KEYS:
        value = _field(reader, f"tokenizer.ggml.fim_{role}_token_id")
        if isinstance(value, int) and 0 <= value < len(tokens):
            ids[role] = value
    declared = all(role in ids for role in ("pre", "suf", "mid"))
    if not declared:
        ids = _by_text(tokens)
    eog = [tokens[i] for i in (_field(reader, "tokenizer.ggml.eot_token_id"), _field(reader, "tokenizer.ggml.eos_token_id"))
           if isinstance(i, int) and 0 <= i < len(tokens)]
    found = GgufFim(ids, {role: tokens[i] for role, i in ids.items()}, declared,
                    tuple(dict.fromkeys([*eog, *(t for t in _EOG if t in set(tokens[-2000:]) | set(tokens[:2000]))])))
    return found if found.complete else None


def _by_text(tokens: list[str]) -> dict[str, int]:
    """Special tokens sit at the start or the end of a vocabulary: look there, as llama.cpp does by text."""
    where: dict[str, int] = {}
    for index in [*range(min(len(tokens), 2000)), *range(max(2000, len(tokens) - 2000), len(tokens))]:
        where.setdefault(tokens[index], index)
    found: dict[str, int] = {}
    for role, spellings in _KNOWN.items():
        for text in spellings:
            if text in where:
                found[role] = where[text]
                break
    return found
