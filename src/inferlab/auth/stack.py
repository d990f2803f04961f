"""The auth stack the composition root builds when ``features.auth`` is on: store, service,
admin, audit log, and their lifespan (migrate, bootstrap, JWKS, last-used flusher, close).
The HTTP side (the credential middleware, the route policy) is the API's (``api/auth.py``)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from inferlab.auth.admin import IdentityAdmin, KeyCheck
from inferlab.auth.audit import AuditLog
from inferlab.auth.jwt import JwtVerifier
from inferlab.auth.pepper import load_pepper, pepper_configured, previous_peppers
from inferlab.auth.service import AuthService, LastUsedRecorder
from inferlab.config import AuthSettings
from inferlab.errors import StoreUnavailable
from inferlab.store import (
    Database,
    SqlIdentityStore,
    current_revision,
    database_url,
    head_revision,
    is_sqlite,
    upgrade,
)
from inferlab.store.audit import SqlAuditStore

log = logging.getLogger("inferlab.auth")


class SchemaOutOfDate(RuntimeError):
    pass


def _print_bootstrap_key(token: str) -> None:
    # Deliberately not logged: logs are shipped and kept, this key must be seen once and only here.
    sys.stderr.write(
        "\n  InferLab created a platform-admin API key. It is shown only this once; store it now:\n\n"
        f"    {token}\n\n"
        "  (create more with `inferlab keys create` or POST /admin/keys)\n\n"
    )
    sys.stderr.flush()


def open_database(auth: AuthSettings, data_dir: Path, url: SecretStr | None) -> Database:
    """The store: ``url`` (``database_url``), else SQLite in ``data_dir``."""
    return Database(database_url(data_dir, url.get_secret_value() if url else None),
                    timeout_s=auth.store_timeout_s, retry_s=auth.store_retry_s)


@dataclass
class AuthStack:
    config: AuthSettings
    database: Database
    store: SqlIdentityStore
    service: AuthService
    admin: IdentityAdmin
    audit: AuditLog  # the admin actions' audit log (IdentityAdmin and LimitAdmin write it)
    announce_key: Callable[[str], None] = field(default=_print_bootstrap_key)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        auth = self.config
        try:
            await migrate_or_check(self.database, auth.auto_migrate)
            if not is_sqlite(self.database.url) and not pepper_configured(self.config):
                log.warning("auth.pepper is not configured: replicas sharing this database must share one "
                            "pepper (auth.pepper / INFERLAB_AUTH__PEPPER) or their keys will not verify")
            if auth.bootstrap:
                created = await self.admin.bootstrap()
                if created is not None:
                    log.info("bootstrap platform-admin key created", extra={"key_id": created.key.id})
                    self.announce_key(created.token)
            if self.service.jwt is not None:
                await self.service.jwt.start()
        except BaseException:
            await self.database.close()
            raise
        self.service.last_used.start()

    async def stop(self) -> None:
        await self.service.last_used.stop()
        await self.database.close()


async def migrate_or_check(database: Database, auto_migrate: bool) -> None:
    if auto_migrate:
        await upgrade(database)
        return
    current, head = await current_revision(database), head_revision()
    if current != head:
        raise SchemaOutOfDate(f"the database schema is at {current or 'nothing'}, this InferLab needs {head}: "
                              "run `inferlab db upgrade` (or set auth.auto_migrate: true)")


def build_auth(auth: AuthSettings, database: Database, *, data_dir: Path, check_key: KeyCheck | None = None) -> AuthStack:
    """Build from the ``auth`` section, the store's database (``open_database``) and the data
    directory (no I/O but reading or creating the pepper file); ``running()`` opens and closes the
    database. ``check_key``: a further delegation check of new keys (the tenant's tier)."""
    store = SqlIdentityStore(database)
    jwt = JwtVerifier(auth.jwt, ttl_s=auth.key_cache_ttl_s, max_entries=auth.key_cache_size) if auth.jwt.issuer else None
    pepper = load_pepper(auth, data_dir)
    service = AuthService(store, pepper, previous_peppers=previous_peppers(auth), ttl_s=auth.key_cache_ttl_s,
                          max_entries=auth.key_cache_size, last_used=LastUsedRecorder(store, auth.last_used_flush_s),
                          jwt=jwt, outage_grace_s=auth.outage_grace_s)
    audit = AuditLog(SqlAuditStore(database), errors=(SQLAlchemyError, OSError, StoreUnavailable))
    admin = IdentityAdmin(store, pepper, forget=service.forget, audit=audit, check_key=check_key)
    return AuthStack(auth, database, store, service, admin, audit)
