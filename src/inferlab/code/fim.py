"""Fill-in-the-middle prompt templates by model family, byte-exact (the facts and their sources:
docs/architecture.md, *CodeLab*). The gateway renders the FIM prompt itself, so ``suffix`` works
the same on every engine that can complete text and is never silently dropped; an engine with a
native infill route (llama.cpp ``/infill``) gets prefix, suffix and context instead.

A family is its sentinels in order (PSM: prefix, suffix, middle; SPM: suffix, prefix, and for
Codestral no middle at all), its stop words, and how repository context is laid out in front of
the file being edited (``RepoFormat``): Qwen2.5-Coder's ``<|repo_name|>``/``<|file_sep|>``,
StarCoder2's ``<repo_name>``/``<file_sep>`` (the path inside ``<fim_prefix>``), or plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inferlab.errors import InvalidRequest, UnsupportedFeature

Order = Literal["psm", "spm"]
RepoStyle = Literal["qwen", "starcoder2", "plain"]


@dataclass(frozen=True, slots=True)
class ContextFile:
    """A piece of another file put in front of the one being edited."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class RepoFormat:
    """How files of the repository precede the current one: ``qwen`` and ``starcoder2`` with the
    model's own separator tokens, ``plain`` with a text header per file (Continue's ``+++++ path``)."""

    style: RepoStyle = "plain"
    repo_name: str = ""
    file_sep: str = ""
    header: str = "+++++ "


PLAIN = RepoFormat()


@dataclass(frozen=True, slots=True)
class FimTemplate:
    name: str
    prefix_token: str  # as written in the template, spaces included (CodeLlama: "<PRE> ")
    suffix_token: str
    middle_token: str  # "" for Codestral, which has none
    order: Order
    stop: tuple[str, ...]
    repo: RepoFormat = PLAIN
    special: tuple[str, ...] = field(default=())  # the sentinels that must each be one special token

    @property
    def template(self) -> str:
        """The Tabby-style one-line form, with ``{prefix}`` and ``{suffix}``."""
        return self.render("{prefix}", "{suffix}")

    def render(self, prefix: str, suffix: str) -> str:
        if self.order == "spm":
            return self.suffix_token + suffix + self.prefix_token + prefix + self.middle_token
        return self.prefix_token + prefix + self.suffix_token + suffix + self.middle_token

    def segments(self, prefix: str, suffix: str) -> list[tuple[bool, str]]:
        """The rendered prompt as (is a sentinel, text) pieces, each sentinel stripped of the spaces
        the template writes around it (CodeLlama's), which go to the text beside it: what a
        tokenizer must turn into one special token each, and the text between."""
        if self.order == "spm":
            raw = [(True, self.suffix_token), (False, suffix), (True, self.prefix_token), (False, prefix)]
        else:
            raw = [(True, self.prefix_token), (False, prefix), (True, self.suffix_token), (False, suffix)]
        if self.middle_token:
            raw.append((True, self.middle_token))
        pieces: list[tuple[bool, str]] = []
        carry = ""
        for special, text in raw:
            if not special:
                pieces.append((False, carry + text))
                carry = ""
                continue
            core = text.strip()
            lead, trail = text[: text.index(core)], text[text.index(core) + len(core):]
            if lead and pieces and not pieces[-1][0]:
                pieces[-1] = (False, pieces[-1][1] + lead)
            pieces.append((True, core))
            carry = trail
        return [(special, text) for special, text in pieces if special or text]

    def render_with_context(self, prefix: str, suffix: str, files: Sequence[ContextFile] = (), *,
                            path: str | None = None, repo: str | None = None) -> str:
        """The FIM prompt with other files of the repository in front, in the family's repo-level layout."""
        style = self.repo.style
        if style == "qwen" and (files or path):
            head = f"{self.repo.repo_name}{repo or 'repository'}\n"
            head += "".join(f"{self.repo.file_sep}{f.path}\n{f.text}\n" for f in files)
            if path:
                head += f"{self.repo.file_sep}{path}\n"
            return head + self.render(prefix, suffix)
        if style == "starcoder2" and (files or path):
            head = f"{self.repo.repo_name}{repo or 'repository'}"
            head += "".join(f"{self.repo.file_sep}{f.path}\n{f.text}" for f in files)
            current = f"{path}\n" if path else ""
            return head + self.repo.file_sep + self.render(current + prefix, suffix)
        if not files and not path:
            return self.render(prefix, suffix)
        blocks = "".join(f"{self.repo.header}{f.path}\n{f.text}\n" for f in files)
        current = f"{self.repo.header}{path}\n" if path else ""
        return self.render(blocks + current + prefix, suffix)


def _family(name: str, prefix: str, suffix: str, middle: str, stop: tuple[str, ...], *,
            order: Order = "psm", repo: RepoFormat = PLAIN) -> FimTemplate:
    special = tuple(t.strip() for t in (prefix, suffix, middle) if t.strip())
    return FimTemplate(name, prefix, suffix, middle, order, stop, repo, special)


_QWEN_STOP = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
              "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>")
_STARCODER_STOP = ("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>")
_DEEPSEEK_STOP = ("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")

FIM_TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        _family("qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", _QWEN_STOP,
                repo=RepoFormat("qwen", "<|repo_name|>", "<|file_sep|>")),
        _family("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", _STARCODER_STOP),
        _family("starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", _STARCODER_STOP,
                repo=RepoFormat("starcoder2", "<repo_name>", "<file_sep>")),
        _family("codellama", "<PRE> ", " <SUF>", " <MID>", ("<EOT>", "</s>")),
        _family("deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", _DEEPSEEK_STOP),
        _family("deepseek-coder-v2", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", _DEEPSEEK_STOP),
        _family("codestral", "[PREFIX]", "[SUFFIX]", "", ("</s>", "[PREFIX]", "[SUFFIX]", "\n+++++ "),
                order="spm"),
        _family("codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                ("<|file_separator|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<eos>",
                 "<end_of_turn>")),
        _family("granite-code", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
                ("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>")),
    )
}

# The configured name that means "read the sentinels from the model's GGUF" (code/gguf_fim.py).
GGUF_TEMPLATE = "gguf"


def fim_template(name: str) -> FimTemplate:
    """A named family's template (``gguf`` is resolved from the model file, not here)."""
    try:
        return FIM_TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown FIM template {name!r}; choose one of {', '.join(sorted(FIM_TEMPLATES))}") from None


_MAX_STOP = 16


def merged_stop(body: dict[str, Any], extra: Sequence[str]) -> list[str]:
    """The client's stop words first, then ``extra``, without repeats, at most 16."""
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else list(stop)
    return list(dict.fromkeys(stops + list(extra)))[:_MAX_STOP]


def apply_fim(body: dict[str, Any], template: FimTemplate | None, model: str,
              files: Sequence[ContextFile] = (), *, path: str | None = None, repo: str | None = None) -> dict[str, Any]:
    """A completion body with ``suffix`` turned into the model's FIM prompt (and its stop words)."""
    suffix = body.get("suffix")
    if suffix is None:
        return body
    if template is None:
        raise UnsupportedFeature(
            f"Model '{model}' has no fill-in-the-middle template, so 'suffix' cannot be honoured; "
            f"set fim_template (one of {', '.join(sorted(FIM_TEMPLATES))}, or {GGUF_TEMPLATE}) for it in the configuration",
            param="suffix",
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise InvalidRequest("With 'suffix', 'prompt' must be a single string", param="prompt")
    rendered = {k: v for k, v in body.items() if k != "suffix"}
    rendered["prompt"] = template.render_with_context(prompt, suffix, files, path=path, repo=repo)
    rendered["stop"] = merged_stop(body, template.stop)
    return rendered

