"""``KeyStore`` and ``UserManager`` over SQLAlchemy: one implementation for SQLite and PostgreSQL.

Every statement is built with SQLAlchemy expressions, so every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from inferlab.auth.model import ApiKey, KeyIdentity, Role, Scopes, Tenant, TenantStatus, User
from inferlab.auth.protocol import Conflict
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import ApiKeyRow, TenantRow, UserRow


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id, user_id=row.user_id, tenant_id=row.tenant_id, name=row.name, key_hash=row.key_hash,
        scopes=Scopes(frozenset(row.route_groups), None if row.models is None else frozenset(row.models)),
        expires_at=row.expires_at, revoked=row.revoked, created_at=row.created_at, last_used_at=row.last_used_at,
    )


def _key_row(key: ApiKey) -> ApiKeyRow:
    models = key.scopes.models
    return ApiKeyRow(
        id=key.id, user_id=key.user_id, tenant_id=key.tenant_id, name=key.name, key_hash=key.key_hash,
        route_groups=sorted(key.scopes.groups), models=None if models is None else sorted(models),
        expires_at=key.expires_at, revoked=key.revoked, revoked_at=None, created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def _user(row: UserRow) -> User:
    return User(id=row.id, tenant_id=row.tenant_id, name=row.name, role=row.role, disabled=row.disabled,
                created_at=row.created_at)


def _tenant(row: TenantRow) -> Tenant:
    status: TenantStatus = "suspended" if row.status == "suspended" else "deleted" if row.status == "deleted" else "active"
    return Tenant(id=row.id, name=row.name, created_at=row.created_at, tier=row.tier, status=status,
                  overrides=row.overrides)


KEEP: Any = object()  # update_tenant: leave this field as it is


class SqlIdentityStore:
    """Tenants, users and API keys in the SQL store."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # ---- keys -------------------------------------------------------------------------------
    @bounded
    async def identify(self, key_id: str) -> KeyIdentity | None:
        query = (
            select(ApiKeyRow, UserRow.role, UserRow.disabled)
            .join(UserRow, UserRow.id == ApiKeyRow.user_id)
            .where(ApiKeyRow.id == key_id)
        )
        async with self._db.sessions() as session:
            found = (await session.execute(query)).first()
        if found is None:
            return None
        row, role, disabled = found
        return KeyIdentity(_key(row), role, disabled)

    @bounded
    async def add_key(self, key: ApiKey) -> None:
        async with self._db.sessions.begin() as session:
            session.add(_key_row(key))

    @bounded
    async def get_key(self, key_id: str) -> ApiKey | None:
        async with self._db.sessions() as session:
            row = await session.get(ApiKeyRow, key_id)
            return None if row is None else _key(row)

    @bounded
    async def list_keys(
        self, *, tenant_id: str | None, user_id: str | None, limit: int, after: str | None
    ) -> Sequence[ApiKey]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.id).limit(limit)
        if tenant_id is not None:
            query = query.where(ApiKeyRow.tenant_id == tenant_id)
        if user_id is not None:
            query = query.where(ApiKeyRow.user_id == user_id)
        if after is not None:
            query = query.where(ApiKeyRow.id > after)
        async with self._db.sessions() as session:
            return [_key(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def revoke_key(self, key_id: str, at: datetime) -> bool:
        statement = (
            update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked.is_(False))
            .values(revoked=True, revoked_at=at)
        )
        async with self._db.sessions.begin() as session:
            return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    @bounded
    async def replace_key(self, old_id: str, new: ApiKey, at: datetime) -> bool:
        statement = (
            update(ApiKeyRow).where(ApiKeyRow.id == old_id, ApiKeyRow.revoked.is_(False))
            .values(revoked=True, revoked_at=at)
        )
        async with self._db.sessions.begin() as session:
            if not (await session.execute(statement)).rowcount:  # type: ignore[attr-defined]
                return False
            session.add(_key_row(new))
        return True

    @bounded
    async def touch_last_used(self, used: dict[str, datetime]) -> None:
        if not used:
            return
        when = case(used, value=ApiKeyRow.id)  # one UPDATE ... SET last_used_at = CASE id WHEN ... per batch
        statement = update(ApiKeyRow).where(ApiKeyRow.id.in_(list(used))).values(last_used_at=when)
        async with self._db.sessions.begin() as session:
            await session.execute(statement)

    @bounded
    async def rehash_key(self, key_id: str, old_hash: str, new_hash: str) -> bool:
        statement = (update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.key_hash == old_hash)
                     .values(key_hash=new_hash))
        async with self._db.sessions.begin() as session:
            return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    # ---- tenants and users ------------------------------------------------------------------
    @bounded
    async def add_tenant(self, tenant: Tenant) -> None:
        try:
            async with self._db.sessions.begin() as session:
                session.add(TenantRow(id=tenant.id, name=tenant.name, created_at=tenant.created_at, tier=tenant.tier,
                                      status=tenant.status, overrides=tenant.overrides))
        except IntegrityError:
            raise Conflict(f"tenant {tenant.id!r} exists") from None

    @bounded
    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        async with self._db.sessions() as session:
            row = await session.get(TenantRow, tenant_id)
            return None if row is None else _tenant(row)

    @bounded
    async def list_tenants(self, *, limit: int, after: str | None) -> Sequence[Tenant]:
        query = select(TenantRow).order_by(TenantRow.id).limit(limit)
        if after is not None:
            query = query.where(TenantRow.id > after)
        async with self._db.sessions() as session:
            return [_tenant(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def update_tenant(
        self, tenant_id: str, *, name: str = KEEP, tier: str | None = KEEP, status: TenantStatus = KEEP,
        overrides: dict[str, Any] | None = KEEP,
    ) -> Tenant | None:
        """Change the fields given (``KEEP``: unchanged); the tenant as stored after, or None."""
        values = {field: value for field, value in
                  (("name", name), ("tier", tier), ("status", status), ("overrides", overrides)) if value is not KEEP}
        async with self._db.sessions.begin() as session:
            row = await session.get(TenantRow, tenant_id)
            if row is None:
                return None
            for field, value in values.items():
                setattr(row, field, value)
            await session.flush()
            return _tenant(row)

    @bounded
    async def close_tenant(self, tenant_id: str, when: datetime) -> list[str]:
        """Disable every user of the tenant and revoke every key; the ids of the keys revoked now."""
        async with self._db.sessions.begin() as session:
            revoked = list((await session.scalars(
                select(ApiKeyRow.id).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.revoked.is_(False))
            )).all())
            await session.execute(update(UserRow).where(UserRow.tenant_id == tenant_id).values(disabled=True))
            await session.execute(update(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.revoked.is_(False))
                                  .values(revoked=True, revoked_at=when))
        return revoked

    @bounded
    async def count_tenants_on_tier(self, tier: str) -> int:
        query = select(func.count()).select_from(TenantRow).where(TenantRow.tier == tier, TenantRow.status != "deleted")
        async with self._db.sessions() as session:
            return int((await session.execute(query)).scalar_one())

    @bounded
    async def add_user(self, user: User) -> None:
        row = UserRow(id=user.id, tenant_id=user.tenant_id, name=user.name, role=user.role,
                      disabled=user.disabled, created_at=user.created_at)
        try:
            async with self._db.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise Conflict(f"a user named {user.name!r} exists in tenant {user.tenant_id!r}") from None

    @bounded
    async def get_user(self, user_id: str) -> User | None:
        async with self._db.sessions() as session:
            row = await session.get(UserRow, user_id)
            return None if row is None else _user(row)

    @bounded
    async def find_user(self, tenant_id: str, name: str) -> User | None:
        query = select(UserRow).where(UserRow.tenant_id == tenant_id, UserRow.name == name)
        async with self._db.sessions() as session:
            row = (await session.scalars(query)).first()
            return None if row is None else _user(row)

    @bounded
    async def list_users(self, *, tenant_id: str | None, limit: int, after: str | None) -> Sequence[User]:
        query = select(UserRow).order_by(UserRow.id).limit(limit)
        if tenant_id is not None:
            query = query.where(UserRow.tenant_id == tenant_id)
        if after is not None:
            query = query.where(UserRow.id > after)
        async with self._db.sessions() as session:
            return [_user(row) for row in (await session.scalars(query)).all()]

    @bounded
    async def update_user(self, user_id: str, *, role: Role | None = None, disabled: bool | None = None) -> User | None:
        async with self._db.sessions.begin() as session:
            row = await session.get(UserRow, user_id)
            if row is None:
                return None
            if role is not None:
                row.role = role
            if disabled is not None:
                row.disabled = disabled
            return _user(row)

    @bounded
    async def delete_user(self, user_id: str) -> bool:
        async with self._db.sessions.begin() as session:
            await session.execute(delete(ApiKeyRow).where(ApiKeyRow.user_id == user_id))
            return bool((await session.execute(delete(UserRow).where(UserRow.id == user_id))).rowcount)  # type: ignore[attr-defined]

    @bounded
    async def count_users(self) -> int:
        async with self._db.sessions() as session:
            return int((await session.scalar(select(func.count()).select_from(UserRow))) or 0)
