"""Setting stored limits, with the delegation ceiling: nobody grants limits above their own.

An actor's ceiling, per field, is the tightest value stored for its own key, user and tenant (none
stored: no ceiling there); an explicit grant above it is refused with ``PermissionDenied``. A None
in a grant means "the configured default applies", which binds the actor as well, so it is allowed.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Literal

from inferlab.auth.admin import IdentityAdmin
from inferlab.auth.model import Principal
from inferlab.errors import NotFound, PermissionDenied
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.overrides import LimitStore, OverrideCache
from inferlab.ratelimit.policy import Overrides

Subject = Literal["key", "user", "tenant"]
FIELDS = tuple(f.name for f in fields(Overrides))


def ceiling(own: dict[str, Overrides]) -> dict[str, float]:
    tightest: dict[str, float] = {}
    for stored in own.values():
        for name, value in asdict(stored).items():
            if value is not None:
                tightest[name] = min(value, tightest.get(name, value))
    return tightest


def check_limits_grant(own: dict[str, Overrides], granted: Overrides) -> None:
    top = ceiling(own)
    for name, value in asdict(granted).items():
        if value is not None and name in top and value > top[name]:
            raise PermissionDenied(f"{name} {value} is above your own limit ({top[name]:g})", code="limit_above_own")


class LimitAdmin:
    def __init__(self, identity: IdentityAdmin, store: LimitStore, cache: OverrideCache | None = None) -> None:
        self._identity = identity
        self._store = store
        self._cache = cache

    async def _own(self, actor: Principal) -> dict[str, Overrides]:
        if actor.source == "local":
            return {}  # the local operator: no ceiling
        who = Identity(actor.key_id or "user:" + actor.user_id, actor.user_id, actor.tenant_id)
        loaded = await self._store.get_many([("key", who.key), ("user", who.user), ("tenant", who.tenant)])
        return {subject: value for (subject, _), value in loaded.items()}

    async def _visible(self, actor: Principal, subject: Subject, subject_id: str) -> None:
        if subject == "key":
            await self._identity.get_key(actor, subject_id)
        elif subject == "user":
            user = await self._identity.get_user(actor, subject_id)
            if actor.rank == 0 and user.id != actor.user_id:
                raise NotFound("No such user")
        elif actor.role != "platform-admin" and (subject_id != actor.tenant_id or actor.role != "tenant-admin"):
            raise NotFound("No such tenant")

    async def get(self, actor: Principal, subject: Subject, subject_id: str) -> Overrides:
        await self._visible(actor, subject, subject_id)
        return (await self._store.get_many([(subject, subject_id)])).get((subject, subject_id), Overrides())

    async def set(self, actor: Principal, subject: Subject, subject_id: str, limits: Overrides) -> Overrides:
        await self._visible(actor, subject, subject_id)
        check_limits_grant(await self._own(actor), limits)
        await self._store.put(subject, subject_id, limits)
        if self._cache is not None:
            self._cache.forget(subject, subject_id)
        return limits
