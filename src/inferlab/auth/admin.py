"""Identity administration — users and keys — with every policy check applied.

The admin API and the CLI both call this; the CLI acts as ``LOCAL_OPERATOR``. Objects outside an
actor's reach answer ``NotFound`` exactly like missing ones; grants above the actor's own rights
answer ``PermissionDenied`` (see ``policy``). Every change is written to the audit log (``audit``),
with the HTTP request's id when there is one.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from inferlab.auth import keys
from inferlab.auth.audit import Action, AuditLog, State, key_state, user_state
from inferlab.auth.model import (
    ALL_SCOPES,
    DEFAULT_TENANT,
    LOCAL_OPERATOR,
    ApiKey,
    Principal,
    Role,
    Scopes,
    User,
)
from inferlab.auth.policy import check_grant, check_user_change, visible
from inferlab.auth.protocol import Conflict, KeyStore, UserManager
from inferlab.errors import InvalidRequest, NotFound

BOOTSTRAP_USER = "admin"

KeyCheck = Callable[[Principal, str, Scopes], Awaitable[None]]
"""A further delegation check of a new key (actor, the owner's tenant, the scopes), raising
``PermissionDenied``: the tenant's tier (``inferlab.tenants.ceiling``)."""


class IdentityStore(KeyStore, UserManager, Protocol):
    """Both interfaces on one store (the SQL store implements both)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    token: str  # shown once


class IdentityAdmin:
    def __init__(self, store: IdentityStore, pepper: bytes, *, forget: Callable[[str], None] | None = None,
                 audit: AuditLog | None = None, check_key: KeyCheck | None = None) -> None:
        self._store = store
        self._pepper = pepper
        self._forget = forget or (lambda key_id: None)
        self._audit = audit
        self._check_key = check_key

    async def _record(self, actor: Principal, action: Action, target: tuple[str, str, str], before: State | None,
                      after: State | None, request_id: str | None) -> None:
        if self._audit is not None:
            await self._audit.record(actor, action, target, before=before, after=after, request_id=request_id)

    # ---- users ------------------------------------------------------------------------------
    async def create_user(self, actor: Principal, name: str, role: Role, tenant_id: str | None = None, *,
                          request_id: str | None = None) -> User:
        tenant_id = tenant_id or actor.tenant_id
        check_grant(actor, tenant_id=tenant_id, role=role)
        if await self._store.get_tenant(tenant_id) is None:
            raise InvalidRequest(f"No tenant '{tenant_id}'", code="unknown_tenant", param="tenant_id")
        user = User(f"u_{secrets.token_hex(8)}", tenant_id, name, role, False, _now())
        try:
            await self._store.add_user(user)
        except Conflict as exc:
            raise InvalidRequest(str(exc), code="conflict", param="name") from None
        await self._record(actor, "user.create", ("user", user.id, user.tenant_id), None, user_state(user), request_id)
        return user

    async def get_user(self, actor: Principal, user_id: str) -> User:
        user = await self._store.get_user(user_id)
        if user is None or not (visible(actor, user.tenant_id) and (actor.rank > 0 or user.id == actor.user_id)):
            raise NotFound("No such user")
        return user

    async def list_users(self, actor: Principal, limit: int, after: str | None, tenant_id: str | None = None) -> Sequence[User]:
        if actor.role != "platform-admin":
            if tenant_id not in (None, actor.tenant_id):
                return []
            tenant_id = actor.tenant_id
        return await self._store.list_users(tenant_id=tenant_id, limit=limit, after=after)

    async def update_user(self, actor: Principal, user_id: str, *, role: Role | None = None,
                          disabled: bool | None = None, request_id: str | None = None) -> User:
        user = await self.get_user(actor, user_id)
        check_user_change(actor, user.id, user.tenant_id, user.role, role, disabled)
        updated = await self._store.update_user(user_id, role=role, disabled=disabled)
        if updated is None:
            raise NotFound("No such user")
        await self._forget_user_keys(user_id)
        await self._record(actor, "user.update", ("user", user.id, user.tenant_id), user_state(user),
                           user_state(updated), request_id)
        return updated

    async def delete_user(self, actor: Principal, user_id: str, *, request_id: str | None = None) -> None:
        user = await self.get_user(actor, user_id)
        check_user_change(actor, user.id, user.tenant_id, user.role, None, True)
        await self._forget_user_keys(user_id)
        if not await self._store.delete_user(user_id):
            raise NotFound("No such user")
        await self._record(actor, "user.delete", ("user", user.id, user.tenant_id), user_state(user), None, request_id)

    async def _forget_user_keys(self, user_id: str) -> None:
        after: str | None = None
        while batch := await self._store.list_keys(tenant_id=None, user_id=user_id, limit=500, after=after):
            for key in batch:
                self._forget(key.id)
            after = batch[-1].id

    # ---- keys -------------------------------------------------------------------------------
    async def create_key(
        self, actor: Principal, *, name: str, user_id: str | None = None, scopes: Scopes | None = None,
        expires_at: datetime | None = None, request_id: str | None = None,
    ) -> CreatedKey:
        owner = await self.get_user(actor, user_id or actor.user_id)
        if owner.id != actor.user_id and actor.rank == 0:
            raise NotFound("No such user")
        scopes = scopes if scopes is not None else Scopes(frozenset({"inference"}), actor.scopes.models)
        if expires_at is not None and expires_at <= _now():
            raise InvalidRequest("expires_at is in the past", param="expires_at", code="invalid_value")
        check_grant(actor, tenant_id=owner.tenant_id, role=owner.role, scopes=scopes, expires_at=expires_at)
        if self._check_key is not None:
            await self._check_key(actor, owner.tenant_id, scopes)
        created = await self._issue(owner, name, scopes, expires_at)
        await self._record(actor, "key.create", ("key", created.key.id, owner.tenant_id), None,
                           key_state(created.key), request_id)
        return created

    async def _issue(self, owner: User, name: str, scopes: Scopes, expires_at: datetime | None,
                     replacing: str | None = None) -> CreatedKey:
        new = keys.generate()
        key = ApiKey(new.key_id, owner.id, owner.tenant_id, name, keys.hash_secret(self._pepper, new.key_id, new.secret),
                     scopes, expires_at, False, _now())
        if replacing is None:
            await self._store.add_key(key)
        elif not await self._store.replace_key(replacing, key, _now()):
            current = await self._store.get_key(replacing)
            if current is not None and current.revoked:  # revoked or rotated meanwhile: as if before
                raise InvalidRequest("A revoked key cannot be rotated", code="key_revoked")
            raise NotFound("No such key")
        return CreatedKey(key, new.token)

    async def get_key(self, actor: Principal, key_id: str) -> ApiKey:
        key = await self._store.get_key(key_id) if keys.is_key_id(key_id) else None
        if key is None or not self._can_see(actor, key):
            raise NotFound("No such key")
        return key

    async def list_keys(self, actor: Principal, limit: int, after: str | None, user_id: str | None = None) -> Sequence[ApiKey]:
        if actor.role == "platform-admin":
            return await self._store.list_keys(tenant_id=None, user_id=user_id, limit=limit, after=after)
        if actor.role == "tenant-admin":
            return await self._store.list_keys(tenant_id=actor.tenant_id, user_id=user_id, limit=limit, after=after)
        if user_id not in (None, actor.user_id):
            return []
        return await self._store.list_keys(tenant_id=actor.tenant_id, user_id=actor.user_id, limit=limit, after=after)

    async def revoke_key(self, actor: Principal, key_id: str, *, request_id: str | None = None) -> ApiKey:
        key = await self.get_key(actor, key_id)
        await self._store.revoke_key(key.id, _now())
        self._forget(key.id)
        revoked = await self.get_key(actor, key_id)
        await self._record(actor, "key.revoke", ("key", key.id, key.tenant_id), key_state(key), key_state(revoked),
                           request_id)
        return revoked

    async def rotate_key(self, actor: Principal, key_id: str, *, request_id: str | None = None) -> CreatedKey:
        """A new key (new id and secret) with the old one's owner, name, scopes and expiry; the old is revoked."""
        key = await self.get_key(actor, key_id)
        if key.revoked:
            raise InvalidRequest("A revoked key cannot be rotated", code="key_revoked")
        owner = await self._store.get_user(key.user_id)
        if owner is None:
            raise NotFound("No such key")
        check_grant(actor, tenant_id=owner.tenant_id, role=owner.role, scopes=key.scopes, expires_at=key.expires_at)
        created = await self._issue(owner, key.name, key.scopes, key.expires_at, replacing=key.id)
        self._forget(key.id)
        await self._record(actor, "key.rotate", ("key", key.id, key.tenant_id), key_state(key),
                           key_state(created.key), request_id)
        return created

    def _can_see(self, actor: Principal, key: ApiKey) -> bool:
        if actor.role == "platform-admin":
            return True
        if actor.role == "tenant-admin":
            return key.tenant_id == actor.tenant_id
        return key.user_id == actor.user_id

    # ---- first start ------------------------------------------------------------------------
    async def bootstrap(self) -> CreatedKey | None:
        """On an empty store: a platform-admin user in the default tenant and its first key."""
        if await self._store.count_users():
            return None
        admin = User(f"u_{secrets.token_hex(8)}", DEFAULT_TENANT, BOOTSTRAP_USER, "platform-admin", False, _now())
        try:
            await self._store.add_user(admin)
        except Conflict:  # another replica bootstrapped first
            return None
        await self._record(LOCAL_OPERATOR, "user.create", ("user", admin.id, admin.tenant_id), None,
                           user_state(admin), None)
        created = await self._issue(admin, "bootstrap", ALL_SCOPES, None)
        await self._record(LOCAL_OPERATOR, "key.create", ("key", created.key.id, admin.tenant_id), None,
                           key_state(created.key), None)
        return created


