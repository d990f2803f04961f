"""The resource-allocator interface: per-tenant shares of each model pool's capacity.

A request asks its pool for one sequence and ``kv_tokens`` (prompt + max_tokens) of KV cache.
``try_admit`` answers at once with a :class:`Grant` or a :class:`Refusal` (the rule is
:mod:`inferlab.resources.rule`); a caller that wants to queue rather than refuse awaits
``wait_for_capacity`` and tries again. Every grant is released exactly once, whatever ends the
request (completion, error, timeout, client disconnect): a second ``release`` of it is a no-op
that returns False, in every process sharing the pool.

Grants are leases: each expires ``lease_ttl_s`` after it was admitted or last renewed, and an
expired grant is freed as if released (counted as ``expired``; releasing it later returns
False). A process renews the grants it still holds (``renew``, one call for all of them, e.g.
every ``lease_ttl_s / 3``: :class:`inferlab.resources.leases.GrantLeases` does it), so the
capacity held by a gateway that dies without releasing comes back one TTL later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inferlab.resources.model import Grant, PoolConfig, PoolUsage, Refusal


class ResourceAllocator(Protocol):
    async def configure(self, pool: str, config: PoolConfig) -> None:
        """Set (or replace) a pool's capacity and shares. Running grants are never broken: the new
        terms apply to new admissions, and the capacity they hold counts against the new terms."""
        ...

    async def try_admit(self, pool: str, tenant: str, kv_tokens: int, request_id: str) -> Grant | Refusal:
        """Admit one sequence of ``kv_tokens`` for ``tenant``, or say why not. Admitting a
        ``request_id`` that already holds a grant in the pool returns that grant, charging nothing more."""
        ...

    async def release(self, grant: Grant) -> bool:
        """Give the grant back; True the first time, False ever after (or once it has expired)."""
        ...

    async def renew(self, grants: Sequence[Grant]) -> int:
        """Extend every grant still held to expire one lease TTL from now; how many were still held.
        A released or expired grant stays gone."""
        ...

    async def wait_for_capacity(self, pool: str, timeout_s: float, tenant: str = "") -> None:
        """Return when something was released in ``pool`` that ``tenant`` may use (or its configuration
        changed), or after ``timeout_s``. It promises nothing: the caller tries to admit again."""
        ...

    async def usage(self, pool: str) -> PoolUsage | None:
        """The pool's terms, totals and per-tenant figures; None for a pool never configured."""
        ...

    async def aclose(self) -> None:
        ...
