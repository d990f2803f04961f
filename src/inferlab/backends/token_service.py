"""Tokenize and detokenize for a served model: the gateway's ``POST /tokenize`` and
``POST /detokenize``, answered by one routable replica's engine through its tokenizer client
(llama-server's endpoints; vLLM/SGLang-style and Ollama engines have none the gateway can use:
a 400 naming ``model``)."""

from __future__ import annotations

import time

import aiohttp

from inferlab.backends.tokenize import LlamaServerTokenizer, TokenizerUnavailable
from inferlab.errors import InvalidRequest, ServiceUnavailable, UpstreamError
from inferlab.router import ModelRouter


class TokenService:
    def __init__(self, router: ModelRouter, session: aiohttp.ClientSession) -> None:
        self._router = router
        self._tokenizers: dict[str, LlamaServerTokenizer] = {}
        for _, pool in router.all_pools():
            for replica in pool.replicas:
                endpoint = replica.endpoint
                if endpoint.base_url and endpoint.engine in ("llamacpp", "generic"):
                    self._tokenizers[replica.name] = LlamaServerTokenizer(session, endpoint.base_url,
                                                                          endpoint.api_key)

    def _tokenizer(self, model: str) -> LlamaServerTokenizer:
        pool = self._router.pool(model)  # unknown model: 404
        candidates = [r for r in pool.replicas if r.name in self._tokenizers]
        if not candidates:
            raise InvalidRequest(f"The engine of the model '{model}' does not offer tokenization", param="model",
                                 code="unsupported_model")
        now = time.monotonic()
        routable = [r for r in candidates if r.routable(now)]
        if not routable:
            raise ServiceUnavailable(f"No replica of the model '{model}' is available", retry_after=1.0)
        return self._tokenizers[routable[0].name]

    async def tokenize(self, model: str, text: str, *, add_special: bool) -> list[int]:
        try:
            return await self._tokenizer(model).tokenize(text, add_special=add_special)
        except TokenizerUnavailable as exc:
            raise UpstreamError(f"The engine could not tokenize: {exc}") from None

    async def detokenize(self, model: str, tokens: list[int]) -> str:
        try:
            return await self._tokenizer(model).detokenize(tokens)
        except TokenizerUnavailable as exc:
            raise UpstreamError(f"The engine could not detokenize: {exc}") from None
