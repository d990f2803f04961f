"""Who a request counts against: the authenticated principal, else the client address.

``X-Forwarded-For`` is believed only from trusted proxies: walking the header right to left from
the peer, every hop a trusted proxy added is skipped and the first untrusted one is the client. A
client that sends its own header only prepends to the left of what the proxies append, so spoofing
never changes its bucket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Identity:
    key: str
    user: str
    tenant: str


class ClientAddress:
    def __init__(self, trusted: Sequence[str]) -> None:
        self._trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in trusted)

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, peer: str | None, forwarded_for: str | None) -> str:
        peer = peer or "unknown"
        if not forwarded_for or not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop.strip("[]")))
                except ValueError:
                    return peer  # garbage where an address should be: count it against the proxy
        return hops[0] if hops else peer
