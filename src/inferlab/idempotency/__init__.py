"""Idempotency keys: a write sent twice with the same ``Idempotency-Key`` runs once.

The first request with a key claims it (``IdempotencyStore.begin``) and its response is kept for
``idempotency.ttl_s``; a repeat with the same fingerprint (method, path and query, body hash)
gets that response again; a repeat with another fingerprint is refused (422
``idempotency_key_reused``), one that arrives while the first is running too (409
``idempotency_key_in_use``). A 5xx is not kept: the key is released and may be retried. Keys are
scoped to the caller (``scope_of``): two tenants using the same key string never meet.

The HTTP side is ``inferlab.api.idempotency``; the stores are ``memory.MemoryIdempotencyStore``
and ``inferlab.store.idempotency.SqlIdempotencyStore``, passing one contract suite.
"""

from inferlab.idempotency.protocol import (
    Begun,
    Claimed,
    Conflicting,
    IdempotencyStore,
    InUse,
    Replay,
    StoredResponse,
)

__all__ = ["Begun", "Claimed", "Conflicting", "IdempotencyStore", "InUse", "Replay", "StoredResponse"]
