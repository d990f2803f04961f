"""OpenAI requests → JetStream's ``DecodeRequest`` (``POST /v1/generate``).

JetStream's HTTP server takes exactly ``{"max_tokens": int, "text_content": {"text": str}}`` (its
pydantic model forbids any other field; sampling is fixed when the server starts, per model), so:

- chat messages become one text prompt through the model's chat template (``chat_template``:
  llama3, gemma, chatml, or plain role-tagged lines); images and tools are refused (400);
- ``max_tokens`` / ``max_completion_tokens`` → ``max_tokens`` (``DEFAULT_MAX_TOKENS`` when absent:
  JetStream needs one);
- ``stop`` is applied by the adapter to the text as it streams;
- ``n`` > 1, ``logprobs``, ``suffix``, ``response_format``, ``tools`` → 400 unsupported;
  ``temperature``, ``top_p``, ``seed`` and the other sampling fields are the server's own: ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from inferlab.errors import InvalidRequest, UnsupportedFeature

ChatTemplate = Literal["llama3", "gemma", "chatml", "plain"]
DEFAULT_MAX_TOKENS = 256
_REFUSED = ("suffix", "logprobs", "top_logprobs", "tools", "functions", "response_format")


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise UnsupportedFeature(f"{where}: this model's engine (JetStream) takes text only", param=where)
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise InvalidRequest(f"{where} must be a string or a list of content parts", param=where)


def chat_prompt(messages: list[Any], template: ChatTemplate) -> str:
    """The messages as one prompt, ending where the assistant's reply begins."""
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
        turns.append((str(message.get("role", "user")), _text(message.get("content"), f"messages[{index}].content")))
    if template == "llama3":
        body = "".join(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>" for role, text in turns)
        return "<|begin_of_text|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    if template == "gemma":  # no system role: its text opens the first user turn
        system = "\n\n".join(text for role, text in turns if role == "system")
        rest = [(("model" if role == "assistant" else "user"), text) for role, text in turns if role != "system"]
        if system and rest:
            rest[0] = (rest[0][0], f"{system}\n\n{rest[0][1]}")
        return "".join(f"<start_of_turn>{role}\n{text}<end_of_turn>\n" for role, text in rest) + "<start_of_turn>model\n"
    if template == "chatml":
        return "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns) + "<|im_start|>assistant\n"
    return "".join(f"{role}: {text}\n" for role, text in turns) + "assistant:"


def stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(s for s in stop if s)
    raise InvalidRequest("stop must be a string or a list of strings", param="stop")


def decode_request(body: dict[str, Any], *, chat: bool, template: ChatTemplate) -> dict[str, Any]:
    """The JetStream request body for an OpenAI chat or text completion."""
    for name in _REFUSED:
        if body.get(name) not in (None, False, [], ""):
            raise UnsupportedFeature(f"'{name}' is not supported by this model's engine (JetStream)", param=name)
    if body.get("n", 1) != 1:
        raise UnsupportedFeature("'n' above 1 is not supported by this model's engine (JetStream)", param="n")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("messages must be a non-empty list", param="messages")
        prompt = chat_prompt(messages, template)
    else:
        prompt = body.get("prompt", "")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise UnsupportedFeature("JetStream takes one text prompt per request", param="prompt")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return {"max_tokens": int(max_tokens) if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS,
            "text_content": {"text": prompt}}
