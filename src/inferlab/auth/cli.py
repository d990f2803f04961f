"""``inferlab keys|users|db``: the same store, pepper and settings (``INFERLAB_*``) as ``serve``.

The CLI acts as the local operator (platform admin): whoever can read the database and the
pepper holds every right already. ``keys create`` and ``keys rotate`` print only the key on stdout.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from inferlab.auth.model import LOCAL_OPERATOR, ROLE_RANK, ROUTE_GROUPS, Role, Scopes, User
from inferlab.errors import InferLabError

if TYPE_CHECKING:
    from inferlab.services import AdminServices

T = TypeVar("T")

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML configuration file (as for serve).")
ProfileOpt = typer.Option(None, help="Profile: laptop or production.")
DataDirOpt = typer.Option(None, help="Data directory (as for serve).")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def fail(message: str, code: int = 1) -> NoReturn:
    """A clear message on stderr and a non-zero exit, never a traceback."""
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def run_admin(config: Path | None, profile: str | None, data_dir: Path | None,
              work: Callable[[AdminServices], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run ``work`` on the admin services ``serve`` would build from the same settings; an
    InferLab error becomes ``fail(its message)``. Shared by the CLI's admin commands."""
    from inferlab.auth.stack import migrate_or_check
    from inferlab.config import ConfigError, load_settings
    from inferlab.services import build_admin_services

    try:
        settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise

    async def main() -> T:
        services = build_admin_services(settings)  # the same wiring as `serve`
        try:
            if migrate:
                await migrate_or_check(services.auth.database, settings.auth.auto_migrate)
            return await work(services)
        finally:
            await services.auth.database.close()

    try:
        return asyncio.run(main())
    except InferLabError as exc:
        fail(exc.message)
        raise


def _parse_duration(value: str | None) -> datetime | None:
    if value is None:
        return None
    match = _DURATION.match(value)
    if not match:
        fail("--expires-in takes a number and a unit: 90m, 12h, 30d, 4w", 2)
        raise AssertionError
    return datetime.now(UTC) + timedelta(seconds=int(match[1]) * _UNITS[match[2]])


async def _find_user(svc: AdminServices, user: str, tenant: str) -> User:
    found = await svc.auth.store.find_user(tenant, user) or await svc.auth.store.get_user(user)
    if found is None:
        fail(f"no user {user!r} in tenant {tenant!r} (create one with `inferlab users create`)")
        raise AssertionError  # _fail exits
    return found


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(help="Create, list, revoke and rotate API keys.", no_args_is_help=True)
    users_app = typer.Typer(help="Create, list and change users.", no_args_is_help=True)
    db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
    app.add_typer(db_app, name="db")

    @keys_app.command("create")
    def keys_create(
        user: str = typer.Option(..., "--user", "-u", help="Owner: user name (in --tenant) or user id."),
        name: str = typer.Option("cli", help="A label for the key."),
        tenant: str = typer.Option("default", help="The owner's tenant."),
        group: list[str] = typer.Option(["inference"], "--group", "-g", help="Route group: inference, admin, billing."),
        model: list[str] | None = typer.Option(None, "--model", "-m", help="Allowed model (repeat; default all)."),
        expires_in: str | None = typer.Option(None, help="Lifetime: 90m, 12h, 30d, 4w (default: none)."),
        rpm: int | None = typer.Option(None, min=0, help="Requests per minute for this key (default: config)."),
        tpm: int | None = typer.Option(None, min=0, help="Tokens per minute for this key (default: config)."),
        max_concurrent: int | None = typer.Option(None, min=0, help="Requests in flight for this key."),
        daily_tokens: int | None = typer.Option(None, min=0, help="Token quota per UTC day."),
        monthly_tokens: int | None = typer.Option(None, min=0, help="Token quota per UTC month."),
        daily_spend_usd: float | None = typer.Option(None, min=0, help="Spend quota per UTC day (pricing:)."),
        monthly_spend_usd: float | None = typer.Option(None, min=0, help="Spend quota per UTC month (pricing:)."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Create a key and print it (only it) on stdout: it is shown this once."""
        from inferlab.ratelimit.policy import Overrides

        limits = Overrides(rpm, tpm, max_concurrent, daily_tokens, monthly_tokens, daily_spend_usd, monthly_spend_usd)
        unknown = set(group) - ROUTE_GROUPS
        if unknown:
            fail(f"unknown route group(s) {', '.join(sorted(unknown))}; choose from inference, admin, billing", 2)
        scopes = Scopes(frozenset(group), frozenset(model) if model else None)
        expires = _parse_duration(expires_in)

        async def work(svc: AdminServices) -> str:
            owner = await _find_user(svc, user, tenant)
            created = await svc.auth.admin.create_key(LOCAL_OPERATOR, name=name, user_id=owner.id, scopes=scopes,
                                                   expires_at=expires)
            if limits != Overrides():
                await svc.limit_admin.set(LOCAL_OPERATOR, "key", created.key.id, limits)
            return str(created.token)

        print(run_admin(config, profile, data_dir, work))

    @keys_app.command("list")
    def keys_list(
        user: str | None = typer.Option(None, "--user", "-u", help="Only this user's keys (name or id)."),
        tenant: str = typer.Option("default", help="Tenant of --user."),
        limit: int = typer.Option(200, min=1, max=200),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """List keys as JSON lines (never their secrets)."""
        from inferlab.auth.views import key_json

        async def work(svc: AdminServices) -> list[dict[str, Any]]:
            owner = (await _find_user(svc, user, tenant)).id if user else None
            found = await svc.auth.admin.list_keys(LOCAL_OPERATOR, limit, None, owner)
            return [key_json(k) for k in found]

        for row in run_admin(config, profile, data_dir, work):
            print(orjson.dumps(row).decode())

    @keys_app.command("revoke")
    def keys_revoke(
        key_id: str = typer.Argument(..., help="The key id (il-<keyid>-...) or the prefix il-<keyid>."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Revoke a key; every gateway refuses it within auth.key_cache_ttl_s."""
        key_id = key_id.removeprefix("il-").split("-")[0]
        run_admin(config, profile, data_dir, lambda svc: svc.auth.admin.revoke_key(LOCAL_OPERATOR, key_id))
        Console(stderr=True).print(f"revoked il-{key_id}")

    @keys_app.command("rotate")
    def keys_rotate(
        key_id: str = typer.Argument(..., help="The key id to replace."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Replace a key by a new one with the same owner and scopes; print the new key; revoke the old."""
        key_id = key_id.removeprefix("il-").split("-")[0]

        async def work(svc: AdminServices) -> str:
            return str((await svc.auth.admin.rotate_key(LOCAL_OPERATOR, key_id)).token)

        print(run_admin(config, profile, data_dir, work))

    @users_app.command("create")
    def users_create(
        name: str = typer.Argument(...),
        role: str = typer.Option("member", help="member, tenant-admin or platform-admin."),
        tenant: str = typer.Option("default"),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Create a user and print its id."""
        if role not in ROLE_RANK:
            fail("--role: choose member, tenant-admin or platform-admin", 2)
        checked = cast("Role", role)  # checked against ROLE_RANK above

        async def work(svc: AdminServices) -> str:
            return str((await svc.auth.admin.create_user(LOCAL_OPERATOR, name, checked, tenant)).id)

        print(run_admin(config, profile, data_dir, work))

    @users_app.command("list")
    def users_list(
        tenant: str | None = typer.Option(None, help="Only this tenant."),
        limit: int = typer.Option(200, min=1, max=200),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """List users as JSON lines."""
        from inferlab.auth.views import user_json

        async def work(svc: AdminServices) -> list[dict[str, Any]]:
            return [user_json(u) for u in await svc.auth.admin.list_users(LOCAL_OPERATOR, limit, None, tenant)]

        for row in run_admin(config, profile, data_dir, work):
            print(orjson.dumps(row).decode())

    @users_app.command("update")
    def users_update(
        user_id: str = typer.Argument(...),
        role: str | None = typer.Option(None, help="New role."),
        disabled: bool | None = typer.Option(None, "--disabled/--enabled", help="Disable or enable the user."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Change a user's role or status."""
        if role is not None and role not in ROLE_RANK:
            fail("--role: choose member, tenant-admin or platform-admin", 2)
        new_role = cast("Role | None", role)  # checked against ROLE_RANK above
        run_admin(config, profile, data_dir,
             lambda svc: svc.auth.admin.update_user(LOCAL_OPERATOR, user_id, role=new_role, disabled=disabled))

    @users_app.command("delete")
    def users_delete(
        user_id: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Delete a user and every key they own."""
        run_admin(config, profile, data_dir, lambda svc: svc.auth.admin.delete_user(LOCAL_OPERATOR, user_id))

    @db_app.command("upgrade")
    def db_upgrade(
        revision: str = typer.Argument("head"),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Upgrade the database schema (serve does it on start unless auth.auto_migrate is false)."""
        from inferlab.store import current_revision, upgrade

        async def work(svc: AdminServices) -> Any:
            await upgrade(svc.auth.database, revision)
            return await current_revision(svc.auth.database)

        print(run_admin(config, profile, data_dir, work, migrate=False))

    @db_app.command("current")
    def db_current(
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Print the schema revision the database is at."""
        from inferlab.store import current_revision

        print(run_admin(config, profile, data_dir, lambda svc: current_revision(svc.auth.database), migrate=False))
