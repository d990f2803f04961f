"""JSON schemas of the OpenAI-compatible bodies, for the API description.

Written by hand and kept to what the gateway itself knows: the fields ``api/validation.py`` checks
(with its bounds) and the main fields of the answers. Any other request field is passed to the
engine unchanged, hence ``additionalProperties: true``; bounds that come from the configuration
are named, not inlined.
"""

from __future__ import annotations

from typing import Any

from inferlab.api.routes import Schema

_STRINGS = {"type": "array", "items": {"type": "string"}}
_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}
_PROMPT = {"anyOf": [{"type": "string"}, {**_STRINGS, "minItems": 1}, _TOKENS,
                     {"type": "array", "minItems": 1, "items": _TOKENS}]}
_MODEL = {"type": "string", "description": "a configured model (GET /v1/models)"}
_USER = {"type": "string", "description": "the end user; also the session-affinity key"}
_USAGE = {"type": "object", "properties": {
    "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}}

_SAMPLING: dict[str, Any] = {
    "model": _MODEL,
    "stream": {"type": "boolean", "default": False, "description": "answer as server-sent events"},
    "stream_options": {"type": "object", "properties": {"include_usage": {
        "type": "boolean", "description": "a last chunk carries the usage"}}},
    "max_tokens": {"type": "integer", "minimum": 1, "description": "at most server.max_tokens_limit"},
    "max_completion_tokens": {"type": "integer", "minimum": 1, "description": "at most server.max_tokens_limit"},
    "n": {"type": "integer", "minimum": 1, "description": "choices to generate; at most server.max_n"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "seed": {"type": "integer"},
    "stop": {"anyOf": [{"type": "string"}, {**_STRINGS, "maxItems": 16}]},
    "user": _USER,
}
_PASSED_ON = "Fields not listed here are passed to the engine unchanged."


def _request(name: str, required: list[str], properties: dict[str, Any]) -> Schema:
    return Schema(name, {"type": "object", "description": _PASSED_ON, "required": required,
                         "properties": properties, "additionalProperties": True})


def _answer(name: str, object_: str, choice: dict[str, Any]) -> Schema:
    return Schema(name, {"type": "object", "properties": {
        "id": {"type": "string"}, "object": {"const": object_}, "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, **choice,
            "finish_reason": {"type": ["string", "null"], "description": "stop, length..."}}}},
        "usage": _USAGE}})


CHAT_REQUEST = _request("ChatCompletionRequest", ["model", "messages"], {
    **_SAMPLING,
    "messages": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["role"], "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}],
                    "description": "text, or an array of content parts"}}}},
    "logprobs": {"type": "boolean"},
    "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
})
COMPLETION_REQUEST = _request("CompletionRequest", ["model", "prompt"], {
    **_SAMPLING,
    "prompt": _PROMPT,
    "suffix": {"type": "string", "description": "fill-in-the-middle: the text after the insertion point; "
                                                "rendered with the model's FIM template (400 when it has none)"},
    "echo": {"type": "boolean"},
    "best_of": {"type": "integer", "minimum": 1, "description": "at most server.max_n"},
    "logprobs": {"type": "integer", "minimum": 0, "maximum": 5},
})
EMBEDDING_REQUEST = _request("EmbeddingRequest", ["model", "input"], {
    "model": _MODEL,
    "input": {"anyOf": [{"type": "string", "minLength": 1}, {**_STRINGS, "minItems": 1, "maxItems": 2048}, _TOKENS,
                        {"type": "array", "minItems": 1, "maxItems": 2048, "items": _TOKENS}]},
    "encoding_format": {"enum": ["float", "base64"]},
    "dimensions": {"type": "integer", "minimum": 1, "maximum": 65536},
    "user": _USER,
})

CHAT_COMPLETION = _answer("ChatCompletion", "chat.completion", {"message": {"type": "object", "properties": {
    "role": {"const": "assistant"}, "content": {"type": ["string", "null"]}}}})
COMPLETION = _answer("Completion", "text_completion", {"text": {"type": "string"}})
EMBEDDINGS = Schema("EmbeddingList", {"type": "object", "properties": {
    "object": {"const": "list"}, "model": {"type": "string"}, "usage": _USAGE,
    "data": {"type": "array", "items": {"type": "object", "properties": {
        "object": {"const": "embedding"}, "index": {"type": "integer"},
        "embedding": {"anyOf": [{"type": "array", "items": {"type": "number"}},
                                {"type": "string", "description": "base64 of little-endian float32"}]}}}}}})
_MODEL_CARD = {"type": "object", "properties": {
    "id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
    "owned_by": {"type": "string"}}}
MODEL = Schema("Model", _MODEL_CARD)
MODEL_LIST = Schema("ModelList", {"type": "object", "properties": {
    "object": {"const": "list"}, "data": {"type": "array", "items": _MODEL_CARD}}})
