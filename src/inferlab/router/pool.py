"""Which replica serves a request: one ``BackendPool`` per public model name."""

from __future__ import annotations

from collections.abc import Sequence

from inferlab.errors import ModelNotFound, ServiceUnavailable
from inferlab.types import InferenceBackend, RequestKind

NO_REPLICA_RETRY_AFTER_S = 2.0


class BackendPool:
    """The replicas of one model, picked round-robin among those available."""

    def __init__(self, model: str, replicas: Sequence[InferenceBackend]) -> None:
        if not replicas:
            raise ValueError(f"model {model!r} has no replicas")
        self.model = model
        self.replicas = tuple(replicas)
        self._next = 0

    def pick(self) -> InferenceBackend:
        count = len(self.replicas)
        for offset in range(count):
            replica = self.replicas[(self._next + offset) % count]
            if replica.is_available():
                self._next = (self._next + offset + 1) % count
                return replica
        raise ServiceUnavailable(
            f"no replica of model {self.model!r} is available right now", retry_after=NO_REPLICA_RETRY_AFTER_S
        )

    def is_ready(self) -> bool:
        return any(replica.is_available() for replica in self.replicas)


class ModelRouter:
    """Public model name → pool; a model may have a separate pool for embeddings."""

    def __init__(self, pools: Sequence[BackendPool], embedding_pools: Sequence[BackendPool] = ()) -> None:
        self.pools = {pool.model: pool for pool in pools}
        self.embedding_pools = {pool.model: pool for pool in embedding_pools}

    def pool(self, model: str, kind: RequestKind = RequestKind.CHAT) -> BackendPool:
        pool = self.pools.get(model)
        if pool is None:
            raise ModelNotFound(f"The model '{model}' does not exist", param="model")
        if kind is RequestKind.EMBEDDING:
            return self.embedding_pools.get(model, pool)
        return pool

    def is_ready(self, model: str) -> bool:
        embedding = self.embedding_pools.get(model)
        return self.pools[model].is_ready() and (embedding is None or embedding.is_ready())

    def names(self) -> list[str]:
        return list(self.pools)
