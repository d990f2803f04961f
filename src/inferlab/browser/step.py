"""The server-fallback policy: which tiers' browsers may send the server what they could not run.

A hybrid client marks a request it sends to the server instead of running it locally with
``x-inferlab-fallback: <reason>`` (``Call.fallback``). After the tier step, a call so marked
from a tier outside ``browser.server_fallback_tiers`` is refused: 403
``server_fallback_not_in_tier`` (the client then reports the local failure to its caller).
Unmarked calls pass: a tier's ordinary server access is the tier step's business.
"""

from __future__ import annotations

from collections.abc import Iterable

from inferlab.errors import PermissionDenied
from inferlab.pipeline import Call, Next, Reply


class ServerFallbackPolicy:
    passes_streams_through = True  # a step of the chain: see inferlab.pipeline.chain

    def __init__(self, tiers: Iterable[str] | None) -> None:
        self._tiers = frozenset(tiers) if tiers is not None else None

    def allows(self, tier: str) -> bool:
        return self._tiers is None or tier in self._tiers

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        if call.fallback is not None:
            tier = call.tier.name if call.tier is not None else ""
            if not self.allows(tier):
                raise PermissionDenied(f"the {tier} tier may not fall back to the server from the browser",
                                       code="server_fallback_not_in_tier")
        return await call_next(call)
