"""``inferlab tenants|tiers``: tenants and tiers in the store ``serve`` uses, as the local operator.

Each command goes through ``TenantManager`` (the admin API's rules, audited with the local
operator as the actor). Output is JSON: one object, or one per line for lists. Tier files for
``tiers put`` and override files for ``tenants set-overrides`` are YAML or JSON (JSON is YAML).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail, run_admin
from inferlab.auth.model import LOCAL_OPERATOR, Tenant
from inferlab.auth.views import tenant_json
from inferlab.config.tenants import TIER_NAME, TierSpec
from inferlab.tenants.manager import KEEP

if TYPE_CHECKING:
    from inferlab.services import AdminServices

MAX_NAME = 128


def _emit(row: dict[str, Any]) -> None:
    print(orjson.dumps(row).decode())


def _tenant(svc: AdminServices, tenant: Tenant) -> dict[str, Any]:
    return {**tenant_json(tenant), "effective_tier": tenant.tier or svc.tenants.default_tier}


def _name(name: str | None) -> str | None:
    if name is not None and not (0 < len(name) <= MAX_NAME and name.isprintable() and name.strip()):
        fail(f"a name is 1 to {MAX_NAME} printable characters", 2)
    return name


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}", 2)
    except yaml.YAMLError as exc:
        fail(f"{what} file {str(path)!r} is not valid YAML or JSON: {exc}", 2)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        fail(f"{what} file {str(path)!r} must hold a mapping of tier fields", 2)
    return loaded


def _tier_spec(path: Path) -> TierSpec:
    raw = _read_mapping(path, "tier")
    raw.pop("name", None)  # a file written from `tiers show` names its tier; the argument decides
    raw.pop("origin", None)
    try:
        return TierSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(file)"
        message = "not a tier field" if first["type"] == "extra_forbidden" else first["msg"]
        fail(f"tier file {str(path)!r}: {where}: {message}", 2)


def register(app: typer.Typer) -> None:
    tenants_app = typer.Typer(help="Create, list, re-tier, suspend and delete tenants.", no_args_is_help=True)
    tiers_app = typer.Typer(help="List, show, add or replace and delete tiers.", no_args_is_help=True)
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(tiers_app, name="tiers")

    # ---- tenants ------------------------------------------------------------------------------
    @tenants_app.command("list")
    def tenants_list(
        limit: int = typer.Option(200, min=1, max=200),
        after: str | None = typer.Option(None, help="List the tenants after this id."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """List tenants as JSON lines."""

        async def work(svc: AdminServices) -> list[dict[str, Any]]:
            found = await svc.tenant_admin.list_tenants(LOCAL_OPERATOR, limit, after)
            return [_tenant(svc, tenant) for tenant in found]

        for row in run_admin(config, profile, data_dir, work):
            _emit(row)

    @tenants_app.command("show")
    def tenants_show(
        tenant_id: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Show a tenant as JSON."""

        async def work(svc: AdminServices) -> dict[str, Any]:
            return _tenant(svc, await svc.tenant_admin.get(LOCAL_OPERATOR, tenant_id))

        _emit(run_admin(config, profile, data_dir, work))

    @tenants_app.command("create")
    def tenants_create(
        tenant_id: str = typer.Argument(..., help="Lowercase letters, digits, '-' and '_'; never reused."),
        name: str | None = typer.Option(None, help="A display name (default: the id)."),
        tier: str | None = typer.Option(None, help="Its tier (default: tenants.default_tier)."),
        overrides: Path | None = typer.Option(None, help="A YAML/JSON file of tier fields for this tenant alone."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Create a tenant and print it."""
        fields = _read_mapping(overrides, "overrides") if overrides is not None else None

        async def work(svc: AdminServices) -> dict[str, Any]:
            created = await svc.tenant_admin.create(LOCAL_OPERATOR, tenant_id, _name(name), tier=tier, overrides=fields)
            return _tenant(svc, created)

        _emit(run_admin(config, profile, data_dir, work))

    def _update(tenant_id: str, config: Path | None, profile: str | None, data_dir: Path | None, *,
                name: str = KEEP, tier: str | None = KEEP, overrides: dict[str, Any] | None = KEEP) -> None:
        async def work(svc: AdminServices) -> dict[str, Any]:
            changed = await svc.tenant_admin.update(LOCAL_OPERATOR, tenant_id, name=name, tier=tier,
                                                    overrides=overrides)
            return _tenant(svc, changed)

        _emit(run_admin(config, profile, data_dir, work))

    @tenants_app.command("rename")
    def tenants_rename(
        tenant_id: str = typer.Argument(...), name: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Change a tenant's display name (its id never changes)."""
        _update(tenant_id, config, profile, data_dir, name=_name(name) or name)

    @tenants_app.command("set-tier")
    def tenants_set_tier(
        tenant_id: str = typer.Argument(...),
        tier: str | None = typer.Argument(None, help="The tier; omit with --default."),
        default: bool = typer.Option(False, "--default", help="Back to tenants.default_tier."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Move a tenant to another tier (every replica applies it within auth.key_cache_ttl_s)."""
        if (tier is None) == (not default):
            fail("name a tier, or pass --default (not both)", 2)
        _update(tenant_id, config, profile, data_dir, tier=tier)

    @tenants_app.command("set-overrides")
    def tenants_set_overrides(
        tenant_id: str = typer.Argument(...),
        file: Path | None = typer.Argument(None, help="A YAML/JSON file of tier fields; omit with --clear."),
        clear: bool = typer.Option(False, "--clear", help="Remove every override."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Replace a tenant's overrides of its tier's fields (nested sections merge field by field)."""
        if (file is None) == (not clear):
            fail("give an overrides file, or pass --clear (not both)", 2)
        fields = _read_mapping(file, "overrides") if file is not None else {}
        _update(tenant_id, config, profile, data_dir, overrides=fields or None)

    def _status(tenant_id: str, status: str, config: Path | None, profile: str | None,
                data_dir: Path | None) -> None:
        async def work(svc: AdminServices) -> dict[str, Any]:
            changed = await svc.tenant_admin.set_status(LOCAL_OPERATOR, tenant_id,
                                                        "suspended" if status == "suspended" else "active")
            return _tenant(svc, changed)

        _emit(run_admin(config, profile, data_dir, work))

    @tenants_app.command("suspend")
    def tenants_suspend(
        tenant_id: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Suspend a tenant: 403 on every route; its running requests end within auth.key_cache_ttl_s."""
        _status(tenant_id, "suspended", config, profile, data_dir)

    @tenants_app.command("resume")
    def tenants_resume(
        tenant_id: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Resume a suspended tenant."""
        _status(tenant_id, "active", config, profile, data_dir)

    @tenants_app.command("delete")
    def tenants_delete(
        tenant_id: str = typer.Argument(...),
        yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Close a tenant: its users are disabled, its keys revoked, its id never reused; its history is kept."""
        if not yes:
            fail(f"deleting '{tenant_id}' disables its users and revokes its keys for good: pass --yes", 2)

        async def work(svc: AdminServices) -> dict[str, Any]:
            return _tenant(svc, await svc.tenant_admin.delete(LOCAL_OPERATOR, tenant_id))

        _emit(run_admin(config, profile, data_dir, work))

    # ---- tiers --------------------------------------------------------------------------------
    @tiers_app.command("list")
    def tiers_list(
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """List the tiers (shipped, configured and stored) as JSON lines."""

        async def work(svc: AdminServices) -> list[dict[str, Any]]:
            return [view.as_json() for view in await svc.tenant_admin.tiers(LOCAL_OPERATOR)]

        for row in run_admin(config, profile, data_dir, work):
            _emit(row)

    @tiers_app.command("show")
    def tiers_show(
        name: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Show a tier as JSON (a file `tiers put` accepts back)."""

        async def work(svc: AdminServices) -> dict[str, Any]:
            return (await svc.tenant_admin.tier(LOCAL_OPERATOR, name)).as_json()

        _emit(run_admin(config, profile, data_dir, work))

    @tiers_app.command("put")
    def tiers_put(
        name: str = typer.Argument(..., help="Lowercase letters, digits, '-' and '_'."),
        file: Path = typer.Argument(..., help="A YAML or JSON file of tier fields (unset fields: their defaults)."),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Add a tier, or replace one (a stored tier shadows a shipped or configured one of its name)."""
        if not re.match(TIER_NAME, name):
            fail("a tier name is 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit", 2)
        spec = _tier_spec(file)

        async def work(svc: AdminServices) -> dict[str, Any]:
            return (await svc.tenant_admin.put_tier(LOCAL_OPERATOR, name, spec)).as_json()

        _emit(run_admin(config, profile, data_dir, work))

    @tiers_app.command("delete")
    def tiers_delete(
        name: str = typer.Argument(...),
        config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt,
    ) -> None:
        """Delete a stored tier (not while tenants are on it); a shipped or configured one of its name applies again."""
        run_admin(config, profile, data_dir, lambda svc: svc.tenant_admin.delete_tier(LOCAL_OPERATOR, name))
        Console(stderr=True).print(f"deleted the stored tier {name}", highlight=False)
