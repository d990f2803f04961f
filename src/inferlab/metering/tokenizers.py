"""Which tokenizer counts a replica's tokens: the engine's own (llama-server's ``/tokenize``), at
the root of the replica's engine. Ollama has none; nor has a replica whose root is unknown."""

from __future__ import annotations

import aiohttp

from inferlab.backends.tokenize import LlamaServerTokenizer, Tokenizer
from inferlab.router import ModelRouter


class ReplicaTokenizers:
    """``Tokenizers`` over the router's replicas (their engines' roots and keys), one per replica."""

    def __init__(self, router: ModelRouter, session: aiohttp.ClientSession) -> None:
        self._tokenizers: dict[str, Tokenizer] = {}
        for _, pool in router.all_pools():
            for replica in pool.replicas:
                endpoint = replica.endpoint
                if endpoint.base_url and endpoint.engine != "ollama":
                    self._tokenizers[replica.name] = LlamaServerTokenizer(session, endpoint.base_url, endpoint.api_key)

    def get(self, replica: str) -> Tokenizer | None:
        return self._tokenizers.get(replica)
