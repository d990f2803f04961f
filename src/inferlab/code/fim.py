"""Fill-in-the-middle prompt templates by model family (facts from the model cards; see
docs/architecture.md). The gateway renders the FIM prompt itself, so ``suffix`` works the same
on every engine that can complete text, and never gets silently dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from inferlab.errors import InvalidRequest, UnsupportedFeature


@dataclass(frozen=True, slots=True)
class FimTemplate:
    name: str
    template: str  # with {prefix} and {suffix}
    stop: tuple[str, ...]

    def render(self, prefix: str, suffix: str) -> str:
        values = {"{prefix}": prefix, "{suffix}": suffix}
        return _PLACEHOLDER.sub(lambda match: values[match.group(0)], self.template)


_PLACEHOLDER = re.compile(r"\{prefix\}|\{suffix\}")
_STARCODER_STOP = ("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>")

FIM_TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate("qwen2.5-coder", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
                    ("<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                     "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>")),
        FimTemplate("starcoder", "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>", _STARCODER_STOP),
        FimTemplate("codellama", "<PRE> {prefix} <SUF>{suffix} <MID>", ("<EOT>",)),
        FimTemplate("deepseek-coder", "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
                    ("<｜end▁of▁sentence｜>", "<|EOT|>")),
        FimTemplate("codestral", "[SUFFIX]{suffix}[PREFIX]{prefix}", ("</s>", "[PREFIX]", "[SUFFIX]")),
        FimTemplate("codegemma", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
                    ("<|file_separator|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<eos>")),
    )
}


def fim_template(name: str) -> FimTemplate:
    try:
        return FIM_TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown FIM template {name!r}; choose one of {', '.join(sorted(FIM_TEMPLATES))}") from None


def apply_fim(body: dict[str, Any], template: FimTemplate | None, model: str) -> dict[str, Any]:
    """A completion body with ``suffix`` turned into the model's FIM prompt (and its stop words)."""
    suffix = body.get("suffix")
    if suffix is None:
        return body
    if template is None:
        raise UnsupportedFeature(
            f"Model '{model}' has no fill-in-the-middle template, so 'suffix' cannot be honoured; "
            f"set fim_template (one of {', '.join(sorted(FIM_TEMPLATES))}) for it in the configuration",
            param="suffix",
        )
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise InvalidRequest("With 'suffix', 'prompt' must be a single string", param="prompt")
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else list(stop)
    rendered = {k: v for k, v in body.items() if k != "suffix"}
    rendered["prompt"] = template.render(prompt, suffix)
    rendered["stop"] = list(dict.fromkeys(stops + list(template.stop)))[:16]
    return rendered
