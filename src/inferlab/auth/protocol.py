"""The two interfaces the auth package stands behind (SQLite and PostgreSQL implement both)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from inferlab.auth.model import ApiKey, KeyIdentity, Role, Scopes, Tenant, User


class KeyStore(Protocol):
    async def identify(self, key_id: str) -> KeyIdentity | None:
        """The key and its owner's role, or None. The one query authentication makes (cold cache)."""

    async def add_key(self, key: ApiKey) -> None: ...

    async def get_key(self, key_id: str) -> ApiKey | None: ...

    async def list_keys(
        self, *, tenant_id: str | None, user_id: str | None, limit: int, after: str | None
    ) -> Sequence[ApiKey]:
        """Keys ordered by id, after the ``after`` id; ``None`` filters mean "any"."""

    async def revoke_key(self, key_id: str, at: datetime) -> bool: ...

    async def replace_key(self, old_id: str, new: ApiKey, at: datetime) -> bool:
        """Rotation: revoke ``old_id`` and add ``new`` in one transaction; False if ``old_id`` is gone/revoked."""

    async def touch_last_used(self, used: dict[str, datetime]) -> None:
        """Write a batch of last-used times (one statement per batch, not per request)."""

    async def rehash_key(self, key_id: str, old_hash: str, new_hash: str) -> bool:
        """Pepper rotation: replace a key's hash if it still is ``old_hash``; False otherwise."""


class UserManager(Protocol):
    async def add_tenant(self, tenant: Tenant) -> None: ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(self, *, limit: int, after: str | None) -> Sequence[Tenant]: ...

    async def add_user(self, user: User) -> None:
        """Raises ``Conflict`` when the name is taken in the tenant."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user(self, tenant_id: str, name: str) -> User | None: ...

    async def list_users(self, *, tenant_id: str | None, limit: int, after: str | None) -> Sequence[User]: ...

    async def update_user(self, user_id: str, *, role: Role | None = None, disabled: bool | None = None) -> User | None: ...

    async def delete_user(self, user_id: str) -> bool:
        """Delete the user and revoke-by-deletion every key they own."""

    async def count_users(self) -> int: ...


class Conflict(Exception):
    """A uniqueness rule refused the write (a taken user name, a tenant that exists)."""


__all__ = ["Conflict", "KeyStore", "Scopes", "UserManager"]
