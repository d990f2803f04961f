"""The audit log: every admin action that changed something, as one stored row and one log line.

    who     actor key id (none for the CLI and JWTs), user id, tenant, role, source
    what    action (``key.create``...), target type and id, the target's tenant
    change  ``before`` / ``after``: the target's state from an allowlist of fields (``*_state``
            below), so a key's secret or hash can never be written
    when    ``created_at`` (UTC); ``request_id`` when the action came through the HTTP API

Rows are written after the action succeeded. A store that fails then does not undo the action: the
log line (written first) keeps the event, and the failure is logged as an error. Platform admins
read every row; tenant admins the rows of their tenant, with actors from other tenants (platform
admins) shown by role only, so no id crosses tenants.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from inferlab.auth.model import ApiKey, Principal, Tenant, User

Action = Literal["tenant.create", "tenant.update", "tenant.suspend", "tenant.resume", "tenant.delete",
                 "tier.put", "tier.delete", "user.create", "user.update", "user.delete", "key.create", "key.revoke",
                 "key.rotate", "limits.set"]
ACTIONS: frozenset[str] = frozenset(get_args(Action))
State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str  # time-ordered: newest first is descending id
    created_at: datetime
    actor_key_id: str | None
    actor_user_id: str | None
    actor_tenant_id: str | None
    actor_role: str
    actor_source: str
    action: str
    target_type: str  # tenant | user | key (for limits: the subject)
    target_id: str
    tenant_id: str  # the tenant the target belongs to: who may read the row
    before: State | None
    after: State | None
    request_id: str | None = None


class AuditStore(Protocol):
    async def add(self, event: AuditEvent) -> None: ...

    async def list(self, *, tenant_id: str | None, limit: int, after: str | None = None, action: str | None = None,
                   target_id: str | None = None) -> Sequence[AuditEvent]:
        """Newest first; ``after``: the id of the last event of the previous page."""
        ...


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def key_state(key: ApiKey) -> State:
    models = key.scopes.models
    return {"id": key.id, "user_id": key.user_id, "tenant_id": key.tenant_id, "name": key.name,
            "route_groups": sorted(key.scopes.groups), "models": None if models is None else sorted(models),
            "expires_at": _iso(key.expires_at), "revoked": key.revoked}


def user_state(user: User) -> State:
    return {"id": user.id, "tenant_id": user.tenant_id, "name": user.name, "role": user.role,
            "disabled": user.disabled}


def tenant_state(tenant: Tenant) -> State:
    return {"id": tenant.id, "name": tenant.name}


def event_id(micros: int) -> str:
    """Time-ordered across replicas (to their clocks' precision), unique by a random tail."""
    return f"{micros:014x}{secrets.token_hex(5)}"


class AuditLog:
    def __init__(self, store: AuditStore, *, errors: tuple[type[BaseException], ...] = (OSError,),
                 logger: logging.Logger | None = None) -> None:
        self._store = store
        self._errors = errors
        self._log = logger or logging.getLogger("inferlab.audit")
        self._last_us = 0  # ids strictly increase within this process

    def _next_id(self) -> str:
        self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
        return event_id(self._last_us)

    async def record(self, actor: Principal, action: Action, target: tuple[str, str, str], *,
                     before: State | None, after: State | None, request_id: str | None = None) -> AuditEvent:
        """``target``: (type, id, tenant id)."""
        target_type, target_id, tenant_id = target
        event = AuditEvent(self._next_id(), datetime.now(UTC), actor.key_id, actor.user_id, actor.tenant_id,
                           actor.role, actor.source, action, target_type, target_id, tenant_id, before, after,
                           request_id)
        self._log.info("admin action", extra={"audit": event_json(event)})
        try:
            await self._store.add(event)
        except self._errors:
            self._log.error("audit row not stored (the action itself succeeded)",
                            extra={"audit_id": event.id, "action": action}, exc_info=True)
        return event

    async def list(self, actor: Principal, limit: int, after: str | None = None, *, tenant_id: str | None = None,
                   action: str | None = None, target_id: str | None = None) -> list[AuditEvent]:
        if actor.role != "platform-admin":
            if tenant_id not in (None, actor.tenant_id):
                return []
            tenant_id = actor.tenant_id
        found = await self._store.list(tenant_id=tenant_id, limit=limit, after=after, action=action,
                                       target_id=target_id)
        return [_seen_by(actor, event) for event in found]


def _seen_by(reader: Principal, event: AuditEvent) -> AuditEvent:
    if reader.role == "platform-admin" or event.actor_tenant_id == reader.tenant_id:
        return event
    return dataclasses.replace(event, actor_key_id=None, actor_user_id=None, actor_tenant_id=None)


def event_json(event: AuditEvent) -> dict[str, Any]:
    body = asdict(event)
    return {
        "object": "audit_event", "id": event.id, "created_at": _iso(event.created_at),
        "actor": {name: body[f"actor_{name}"] for name in ("key_id", "user_id", "tenant_id", "role", "source")},
        "action": event.action,
        "target": {"type": event.target_type, "id": event.target_id, "tenant_id": event.tenant_id},
        "before": event.before, "after": event.after, "request_id": event.request_id,
    }
