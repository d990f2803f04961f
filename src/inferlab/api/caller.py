"""Who sent a request, as the request steps see it: the ``Caller`` built once per request from the
principal the auth middleware found, or from the client address when authentication is off.

``X-Forwarded-For`` is believed only from trusted proxies (``ClientAddress``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from inferlab.api.auth import PRINCIPAL
from inferlab.ratelimit.identity import ClientAddress
from inferlab.types import Caller


class CallerOf:
    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._addresses = ClientAddress(trusted_proxies)

    def __call__(self, request: web.Request) -> Caller:
        address = self._addresses.of(request.remote, request.headers.get("X-Forwarded-For"))
        principal = request.get(PRINCIPAL)
        if principal is None:
            return Caller(address=address)
        return Caller(
            tenant_id=principal.tenant_id, user_id=principal.user_id, key_id=principal.key_id,
            role=principal.role, address=address, models=principal.scopes.models,
        )
