"""Which requests are cacheable, and their cache key.

Deterministic requests only: ``temperature`` 0, or the client's explicit opt-in
(``x-inferlab-cache: use``). ``x-inferlab-cache: bypass`` skips the cache both ways. The key is a
SHA-256 of the tenant, the model and its version, the route and the request normalised (keys
sorted; ``user`` dropped), so one tenant can never be served another tenant's answer, and a new
model version never sees the old version's answers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

IGNORED_FIELDS = frozenset({"user"})
HEADER = "x-inferlab-cache"


def is_cacheable(body: dict[str, Any], header: str | None) -> bool:
    if header == "bypass":
        return False
    if header == "use":
        return True
    temperature = body.get("temperature")
    return isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0


def cache_key(tenant: str, model: str, version: str, route: str, body: dict[str, Any]) -> str:
    normalised = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    digest = hashlib.sha256()
    for part in (tenant, model, version, route):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
