"""OpenAI request bodies → Ollama's native requests (``/api/chat``, ``/api/generate``, ``/api/embed``).

Every OpenAI field is either mapped to what Ollama does with it, or refused with a 400
``invalid_request_error`` whose ``param`` names it — never dropped without a word:

    mapped    temperature top_p seed stop presence_penalty frequency_penalty max_tokens
              max_completion_tokens (→ options.num_predict) top_k min_p repeat_penalty;
              tools; tool_choice "auto" / "none" (tools not sent); response_format json_object
              (→ format "json") and json_schema (→ format: <schema>); image_url parts with a
              ``data:`` URL (→ the message's ``images``, base64); assistant tool_calls and tool
              messages; logprobs/top_logprobs (Ollama ≥ 0.12.11); reasoning_effort (→ think);
              suffix; embeddings dimensions
    refused   n > 1, best_of > 1, echo, logit_bias, functions/function_call, tool_choice
              "required" or a named function, parallel_tool_calls false, audio output,
              prediction, web_search_options, http(s) image URLs (Ollama takes inline images
              only), audio/file content parts, token-id prompts, several prompts
    ignored   user, metadata, store, service_tier, stream_options (no effect on the output)
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from inferlab.errors import InvalidRequest, UnsupportedFeature

# OpenAI sampling field → Ollama option name
_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}

# OpenAI fields Ollama has no equivalent for, refused when set to anything but their default
_UNSUPPORTED = {
    "logit_bias": "Ollama has no logit bias",
    "functions": "the legacy 'functions' API is not supported by Ollama; use 'tools'",
    "function_call": "the legacy 'function_call' API is not supported by Ollama; use 'tool_choice'",
    "audio": "Ollama does not produce audio",
    "prediction": "Ollama does not support predicted outputs",
    "web_search_options": "Ollama does not search the web",
}

_THINK_LEVELS = {"low": "low", "medium": "medium", "high": "high", "none": False}
_DATA_URL = re.compile(r"data:(image/[\w.+-]+)?;base64,(.*)", re.DOTALL)


def unsupported(param: str, message: str) -> UnsupportedFeature:
    return UnsupportedFeature(f"'{param}' is not supported by this model's engine (Ollama): {message}", param=param)


def invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def ollama_options(body: dict[str, Any]) -> dict[str, Any]:
    options = {_OPTION_NAMES[k]: v for k, v in body.items() if k in _OPTION_NAMES and v is not None}
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    return options


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for field, reason in _UNSUPPORTED.items():
        if body.get(field) not in (None, {}, []):
            raise unsupported(field, reason)
    if (body.get("n") or 1) > 1:
        raise unsupported("n", "Ollama returns one choice per request; send n requests instead")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise unsupported("modalities", "Ollama produces text only")


def _logprobs(native: dict[str, Any], logprobs: Any, top_logprobs: Any) -> None:
    if top_logprobs and not logprobs:
        raise invalid("top_logprobs", "needs 'logprobs': true")
    if logprobs:
        native["logprobs"] = True
        if top_logprobs:
            native["top_logprobs"] = int(top_logprobs)


def _format(response_format: Any) -> Any:
    """``response_format`` → Ollama's ``format`` (None: no constraint)."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise invalid("response_format", "expected an object")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise invalid("response_format.json_schema.schema", "a JSON schema object is required")
        return schema
    raise invalid("response_format.type", "expected 'text', 'json_object' or 'json_schema'")


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if body.get("parallel_tool_calls") is False:
        raise unsupported("parallel_tool_calls", "Ollama cannot limit a reply to one tool call")
    if choice not in (None, "auto", "none"):
        raise unsupported("tool_choice", "Ollama lets the model choose ('auto') or not ('none'); it cannot force a tool")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise invalid("tools", "expected an array of tools")
    native = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise unsupported(where + ".type", "Ollama supports function tools only")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid(where + ".function.name", "a function name is required")
        spec = {k: function[k] for k in ("name", "description", "parameters") if function.get(k) is not None}
        native.append({"type": "function", "function": spec})
    return None if choice == "none" or not native else native


def _image(where: str, part: dict[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    where += ".image_url.url"
    if not isinstance(url, str):
        raise invalid(where, "expected a URL string")
    if url.startswith(("http://", "https://")):
        raise unsupported(where, "Ollama takes inline images only; send the image as a data: URL (base64)")
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        raise invalid(where, "expected a data:image/...;base64,... URL")
    data = match.group(2)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(where, "the data: URL is not valid base64") from None
    return data


def _content(where: str, content: Any) -> tuple[str, list[str]]:
    """A message's content → (text, base64 images)."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise invalid(f"{at}.{kind}", "expected a string")
            texts.append(text)
        elif kind == "image_url":
            images.append(_image(at, part))
        else:
            raise unsupported(at + ".type", "Ollama takes text and image_url content parts only")
    return "\n".join(texts), images


def _tool_calls(where: str, calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        raise invalid(where, "expected an array")
    native = []
    for index, call in enumerate(calls):
        at = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(at + ".function.name", "a function name is required")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise invalid(at + ".function.arguments", "expected a JSON object encoded as a string")
        entry: dict[str, Any] = {"function": {"name": function["name"], "arguments": parsed}}
        if isinstance(call.get("id"), str):
            entry["id"] = call["id"]
        native.append(entry)
    return native


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    native: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool call id → function name, for the tool messages
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message["role"]
        if role == "function":
            raise unsupported(where + ".role", "the legacy 'function' role is not supported by Ollama; use 'tool'")
        text, images = _content(where + ".content", message.get("content"))
        out: dict[str, Any] = {"role": "system" if role == "developer" else role, "content": text}
        if images:
            out["images"] = images
        if message.get("tool_calls"):
            out["tool_calls"] = _tool_calls(where + ".tool_calls", message["tool_calls"])
            tool_names.update((c["id"], c["function"]["name"]) for c in out["tool_calls"] if "id" in c)
        if role == "tool":
            call_id = message.get("tool_call_id")
            name = message.get("name") or tool_names.get(call_id or "")
            if isinstance(call_id, str):
                out["tool_call_id"] = call_id
            if isinstance(name, str) and name:
                out["tool_name"] = name
        native.append(out)
    return native


def chat_request(body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body for an OpenAI chat completion request."""
    _refuse_unsupported(body)
    native: dict[str, Any] = {"model": model, "stream": stream, "options": ollama_options(body)}
    native["messages"] = _messages(body["messages"])
    tools = _tools(body)
    if tools:
        native["tools"] = tools
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        native["format"] = fmt
    _logprobs(native, body.get("logprobs"), body.get("top_logprobs"))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINK_LEVELS:
            raise unsupported("reasoning_effort", "Ollama's thinking levels are 'low', 'medium', 'high' and 'none'")
        native["think"] = _THINK_LEVELS[effort]
    return native


def _prompt(prompt: Any) -> str:
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise unsupported("prompt", "Ollama takes one text prompt per request (no token ids, no batches)")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise unsupported("prompt", "Ollama takes text prompts only")
    return prompt


def generate_request(body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    """The ``/api/generate`` body for an OpenAI (legacy) completion request."""
    _refuse_unsupported(body)
    if (body.get("best_of") or 1) > 1:
        raise unsupported("best_of", "Ollama returns one completion per request")
    if body.get("echo"):
        raise unsupported("echo", "Ollama does not echo the prompt")
    native: dict[str, Any] = {"model": model, "stream": stream, "options": ollama_options(body)}
    native["prompt"] = _prompt(body.get("prompt", ""))
    if body.get("suffix") is not None:
        native["suffix"] = body["suffix"]
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        native["format"] = fmt
    logprobs = body.get("logprobs")
    _logprobs(native, logprobs is not None, logprobs)
    return native


def embed_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The ``/api/embed`` body for an OpenAI embeddings request."""
    items = body["input"]
    if not isinstance(items, str) and not all(isinstance(item, str) for item in items):
        raise unsupported("input", "Ollama embeds text only, not token ids")
    native: dict[str, Any] = {"model": model, "input": items}
    if body.get("dimensions") is not None:
        native["dimensions"] = body["dimensions"]
    return native
