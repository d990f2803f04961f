"""Legacy ``/v1/completions`` log probabilities and echo, from what engines give.

llama-server takes ``logprobs: N`` on ``/v1/completions`` (as its ``n_probs``) but answers them in
the chat shape (``{"content": [{"token", "logprob", "top_logprobs": [...]}, ...]}``); the legacy
API's shape is four parallel arrays (``tokens``, ``token_logprobs``, ``top_logprobs`` as
token → logprob maps, ``text_offset``). An answer already in the legacy shape (vLLM) is left alone.
``echo`` (the prompt in front of the text) is the gateway's: llama-server refuses it.
"""

from __future__ import annotations

from typing import Any


def legacy_logprobs(found: Any, offset: int) -> tuple[Any, int]:
    """The legacy shape of a choice's ``logprobs`` (unchanged when not chat-shaped), and the text
    offset after its tokens (offsets count characters of the choice's text, from ``offset``)."""
    if not isinstance(found, dict) or not isinstance(found.get("content"), list):
        return found, offset
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for entry in found["content"]:
        token = str(entry.get("token", ""))
        tokens.append(token)
        token_logprobs.append(entry.get("logprob"))
        top = entry.get("top_logprobs")
        tops.append({str(t.get("token", "")): t.get("logprob") for t in top} if isinstance(top, list) else None)
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops, "text_offset": offsets}, offset


def rewrite_choices(body: dict[str, Any], prompt: str | None, offsets: dict[int, int]) -> None:
    """Convert each choice in place: ``prompt`` in front of its text the first time it is seen
    (echo), its log probabilities to the legacy shape. ``offsets`` carries each choice's text offset
    from one streamed chunk to the next."""
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        index = int(choice.get("index", 0))
        if index not in offsets:
            offsets[index] = 0
            if prompt is not None:
                choice["text"] = prompt + str(choice.get("text") or "")
                offsets[index] = len(prompt)
        if choice.get("logprobs") is not None:
            choice["logprobs"], offsets[index] = legacy_logprobs(choice["logprobs"], offsets[index])
