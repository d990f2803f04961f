"""Counting tokens with an engine's own tokenizer: llama-server's ``POST /tokenize`` and
``POST /apply-template`` (the engine simulator serves both too), and the gateway's own
``/tokenize`` and ``/detokenize`` routes (``backends/token_service.py``) through the same client.

Used when an engine gave no usage for a request (a stream cut short, an engine that does not
report usage): the prompt is what the engine tokenized — a chat's messages through the model's
chat template (``/apply-template``), a completion's prompt, an embedding's inputs, each with the
model's special tokens — and the completion is the text generated, without them.

Errors (the engine down, an engine without these endpoints: vLLM and SGLang answer ``/tokenize``
in another shape, Ollama has none) are ``TokenizerUnavailable``; the caller falls back.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import orjson

from inferlab.types import RequestKind


class TokenizerUnavailable(Exception):
    """The engine could not count: unreachable, an error status, or an answer of another shape."""


class Tokenizer(Protocol):
    async def prompt_tokens(self, kind: RequestKind, body: dict[str, Any]) -> int:
        """The tokens of a request's prompt, as the engine counts them."""
        ...

    async def text_tokens(self, text: str) -> int:
        """The tokens of generated text."""
        ...


class LlamaServerTokenizer:
    """One engine's tokenizer at ``root_url`` (the engine root, without ``/v1``)."""

    def __init__(self, session: aiohttp.ClientSession, root_url: str, api_key: str | None = None) -> None:
        self._session = session
        self._root = root_url.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._session.post(self._root + path, data=orjson.dumps(body), headers=self._headers) as response:
                if response.status != 200:
                    raise TokenizerUnavailable(f"{path} answered HTTP {response.status}")
                found = orjson.loads(await response.read())
        except (aiohttp.ClientError, OSError, orjson.JSONDecodeError) as exc:
            raise TokenizerUnavailable(f"{path}: {type(exc).__name__}") from exc
        if not isinstance(found, dict):
            raise TokenizerUnavailable(f"{path} answered an unexpected shape")
        return found

    async def _count(self, text: str, *, special: bool) -> int:
        tokens = (await self._post("/tokenize", {"content": text, "add_special": special})).get("tokens")
        if not isinstance(tokens, list):
            raise TokenizerUnavailable("/tokenize answered without tokens")
        return len(tokens)

    async def text_tokens(self, text: str) -> int:
        return await self._count(text, special=False) if text else 0

    async def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """``text`` as the model's token ids (``POST /tokenize`` of the gateway)."""
        tokens = (await self._post("/tokenize", {"content": text, "add_special": add_special})).get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise TokenizerUnavailable("/tokenize answered without tokens")
        return tokens

    async def detokenize(self, tokens: list[int]) -> str:
        """Token ids back to text (``POST /detokenize`` of the gateway)."""
        content = (await self._post("/detokenize", {"tokens": tokens})).get("content")
        if not isinstance(content, str):
            raise TokenizerUnavailable("/detokenize answered without content")
        return content

    async def prompt_tokens(self, kind: RequestKind, body: dict[str, Any]) -> int:
        if kind is RequestKind.CHAT:
            prompt = (await self._post("/apply-template", {"messages": body.get("messages") or []})).get("prompt")
            if not isinstance(prompt, str):
                raise TokenizerUnavailable("/apply-template answered without a prompt")
            return await self._count(prompt, special=True)
        field = body.get("input") if kind is RequestKind.EMBEDDING else body.get("prompt")
        return sum([await self._prompt_part(part) for part in _parts(field)])

    async def _prompt_part(self, part: str | list[int]) -> int:
        return len(part) if isinstance(part, list) else await self._count(part, special=True)


def _parts(field: object) -> list[str | list[int]]:
    """A prompt or input as the engine takes it: a string, token ids, or a list of either."""
    if isinstance(field, str):
        return [field]
    if isinstance(field, list):
        if field and all(isinstance(item, int) for item in field):
            return [list(field)]
        return [item for item in field if isinstance(item, str)] + [
            item for item in field if isinstance(item, list) and all(isinstance(i, int) for i in item)]
    return []
