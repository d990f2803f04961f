"""Setting stored limits, with the delegation ceiling: nobody grants limits above their own.

Members never change limits (``policy.LIMIT_EDITOR``, also in the route table). Platform admins
and the CLI's local operator set any value: the platform's limits are theirs. Anyone else is held
by a ceiling: per field, the tightest *effective* limit of its own key, user and tenant — what is
stored for that scope, else the scope's default: the tenant's tier's ``tenant_limits`` /
``key_limits`` (``tier_defaults``, as the rate-limit step applies them), else the configured default
(``ratelimit.limits`` / ``quota.limits``). So nobody but a platform admin grants above its tier.
Then, per field of a grant:

- an explicit value above the ceiling is refused;
- null means "the configured default of this scope applies": refused when what would then hold
  the subject (that default, and the effective limits of the user and tenant around it) is above
  the ceiling or unlimited, so a reset cannot lift a tighter stored limit;
- a key or user whose owner's role is above the actor's is refused outright.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal

from inferlab.auth.admin import IdentityAdmin
from inferlab.auth.audit import AuditLog
from inferlab.auth.model import ROLE_RANK, Principal, Role
from inferlab.auth.policy import require_limit_editor
from inferlab.config import LimitSpec, QuotaSpec
from inferlab.config.tenants import TierLimits
from inferlab.errors import NotFound, PermissionDenied
from inferlab.ratelimit.identity import Identity
from inferlab.ratelimit.overrides import LimitStore, OverrideCache
from inferlab.ratelimit.policy import Overrides

Subject = Literal["key", "user", "tenant"]
SUBJECTS: tuple[Subject, ...] = ("key", "user", "tenant")
FIELDS = tuple(f.name for f in fields(Overrides))
TierDefaults = Callable[[str], Awaitable[Mapping[str, Overrides]]]  # tenant id -> its tier's limits per scope


def configured_defaults(limits: Sequence[LimitSpec], quotas: Sequence[QuotaSpec]) -> dict[str, Overrides]:
    """The configured default of each stored-limit scope (the tightest where a scope is listed twice)."""
    found: dict[str, Overrides] = {}
    every: list[LimitSpec | QuotaSpec] = [*limits, *quotas]
    for subject in SUBJECTS:
        specs = [spec for spec in every if spec.scope == subject]
        values = {name: tightest_value(getattr(spec, name, None) for spec in specs) for name in FIELDS}
        found[subject] = Overrides(**values)  # type: ignore[arg-type]
    return found


def overrides_of(limits: TierLimits) -> Overrides | None:
    """A tier's limits of one scope as ``Overrides``; None when it limits nothing."""
    values = limits.model_dump()
    return Overrides(**values) if any(value is not None for value in values.values()) else None


def tier_limit_defaults(tenant: TierLimits, key: TierLimits) -> dict[str, Overrides]:
    """A tier's limits as stored-limit scope defaults (scopes the tier leaves unlimited are absent)."""
    found = {scope: overrides_of(limits) for scope, limits in (("tenant", tenant), ("key", key))}
    return {scope: limits for scope, limits in found.items() if limits is not None}


def tightest_value(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def effective(stored: Overrides | None, default: Overrides | None) -> Overrides:
    """A scope's limits in force: each stored field, else the configured default's."""
    return Overrides(**{name: getattr(stored, name, None) if getattr(stored, name, None) is not None
                        else getattr(default, name, None) for name in FIELDS})


def ceiling(scopes: Iterable[Overrides]) -> dict[str, float]:
    """Per field, the tightest limit over ``scopes`` (fields limited nowhere are absent)."""
    listed = list(scopes)
    found = {name: tightest_value(getattr(scope, name) for scope in listed) for name in FIELDS}
    return {name: value for name, value in found.items() if value is not None}


def check_limits_grant(top: Mapping[str, float], granted: Overrides, default: Overrides | None = None,
                       around: Sequence[Overrides] = ()) -> None:
    """``top``: the actor's ceiling; ``default``: the subject scope's configured default;
    ``around``: the effective limits of the user and tenant that also hold the subject."""
    for name, value in asdict(granted).items():
        if name not in top:
            continue
        if value is not None:
            if value > top[name]:
                raise PermissionDenied(f"{name} {value:g} is above your own limit ({top[name]:g})",
                                       code="limit_above_own", param=name)
            continue
        holding = ceiling([default or Overrides(), *around]).get(name)
        if holding is None or holding > top[name]:
            left = "no limit" if holding is None else f"a limit of {holding:g}"
            raise PermissionDenied(f"{name} null (the configured default) would leave {left}, above your own "
                                   f"limit ({top[name]:g})", code="limit_above_own", param=name)


@dataclass(frozen=True, slots=True)
class Target:
    subject: Subject
    id: str
    tenant_id: str
    owner_id: str | None = None  # keys and users: the user that holds them
    owner_role: Role | None = None


class LimitAdmin:
    def __init__(self, identity: IdentityAdmin, store: LimitStore, cache: OverrideCache | None = None, *,
                 defaults: Mapping[str, Overrides] | None = None, tier_defaults: TierDefaults | None = None,
                 audit: AuditLog | None = None) -> None:
        self._identity = identity
        self._store = store
        self._cache = cache
        self._defaults = dict(defaults or {})
        self._tier_defaults = tier_defaults
        self._audit = audit

    async def _defaults_for(self, tenant_id: str) -> Mapping[str, Overrides]:
        """Each scope's default for a subject of this tenant: its tier's limit, else the configured one."""
        if self._tier_defaults is None:
            return self._defaults
        tier = await self._tier_defaults(tenant_id)
        return {scope: effective(tier.get(scope), self._defaults.get(scope)) for scope in SUBJECTS}

    async def _ceiling(self, actor: Principal) -> dict[str, float] | None:
        """The actor's own effective limits, per field; None: no ceiling."""
        if actor.source == "local" or actor.role == "platform-admin":
            return None
        who = Identity(actor.key_id or "user:" + actor.user_id, actor.user_id, actor.tenant_id)
        own = [("key", who.key), ("user", who.user), ("tenant", who.tenant)]
        stored = await self._store.get_many(own)
        defaults = await self._defaults_for(actor.tenant_id)
        return ceiling(effective(stored.get(scope), defaults.get(scope[0])) for scope in own)

    async def _target(self, actor: Principal, subject: Subject, subject_id: str) -> Target:
        """The subject, if the actor may see it (else ``NotFound``, like a missing one)."""
        if subject == "key":
            key = await self._identity.get_key(actor, subject_id)
            owner = await self._identity.get_user(actor, key.user_id)
            return Target(subject, subject_id, key.tenant_id, owner.id, owner.role)
        if subject == "user":
            user = await self._identity.get_user(actor, subject_id)
            if actor.rank == 0 and user.id != actor.user_id:
                raise NotFound("No such user")
            return Target(subject, subject_id, user.tenant_id, user.id, user.role)
        if actor.role != "platform-admin" and (subject_id != actor.tenant_id or actor.role != "tenant-admin"):
            raise NotFound("No such tenant")
        return Target(subject, subject_id, subject_id)

    async def get(self, actor: Principal, subject: Subject, subject_id: str) -> Overrides:
        await self._target(actor, subject, subject_id)
        return (await self._store.get_many([(subject, subject_id)])).get((subject, subject_id), Overrides())

    async def set(self, actor: Principal, subject: Subject, subject_id: str, limits: Overrides, *,
                  request_id: str | None = None) -> Overrides:
        require_limit_editor(actor)
        target = await self._target(actor, subject, subject_id)
        if target.owner_role is not None and ROLE_RANK[target.owner_role] > actor.rank:
            raise PermissionDenied("You cannot change the limits of a user whose role exceeds your own",
                                   code="delegation_ceiling")
        around = ([("user", target.owner_id)] if subject == "key" and target.owner_id else []) + \
            ([("tenant", target.tenant_id)] if subject != "tenant" else [])
        stored = await self._store.get_many([(subject, subject_id), *around])
        top = await self._ceiling(actor)
        if top is not None:
            defaults = await self._defaults_for(target.tenant_id)
            check_limits_grant(top, limits, defaults.get(subject),
                               [effective(stored.get(scope), defaults.get(scope[0])) for scope in around])
        await self._store.put(subject, subject_id, limits)
        if self._cache is not None:
            self._cache.forget(subject, subject_id)
        if self._audit is not None:
            before = stored.get((subject, subject_id))
            after = limits if any(value is not None for value in asdict(limits).values()) else None
            await self._audit.record(actor, "limits.set", (subject, subject_id, target.tenant_id),
                                     before=asdict(before) if before else None,
                                     after=asdict(after) if after else None, request_id=request_id)
        return limits
