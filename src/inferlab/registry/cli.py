"""``inferlab registry ...``: the model registry in the store ``serve`` uses, as the local operator.
Every gateway on that store follows within ``registry.poll_interval_s`` (no restart). Output is
JSON, one object per line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer
import yaml

from inferlab.auth.cli import ConfigOpt, DataDirOpt, ProfileOpt, fail
from inferlab.registry.admin import RegistryAdmin

registry_app = typer.Typer(help="Model versions, aliases and experiments (features.registry).", no_args_is_help=True)
T = TypeVar("T")


def _emit(row: dict[str, Any]) -> None:
    print(orjson.dumps(row).decode())


def _run(config: Path | None, profile: str | None, data_dir: Path | None,
         work: Callable[[RegistryAdmin, Any], Awaitable[T]]) -> T:
    from inferlab.auth.stack import migrate_or_check, open_database
    from inferlab.config import ConfigError, load_settings
    from inferlab.errors import InferLabError
    from inferlab.registry.seed import seed_of, write_seed
    from inferlab.store.registry import SqlRegistryStore

    try:
        settings = load_settings(config, profile=profile, overrides={"data_dir": data_dir} if data_dir else None)
    except ConfigError as exc:
        fail(str(exc), 2)

    async def go() -> T:
        database = open_database(settings.auth, settings.data_dir, settings.database_url)
        try:
            await migrate_or_check(database, settings.auth.auto_migrate)
            store = SqlRegistryStore(database)
            await write_seed(store, seed_of(settings.models, settings.registry))
            return await work(RegistryAdmin(store, default_unit=settings.registry.unit), settings)
        finally:
            await database.close()

    try:
        return asyncio.run(go())
    except InferLabError as exc:
        fail(exc.message)


@registry_app.command("show")
def show(config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, data_dir: Path | None = DataDirOpt) -> None:
    """Every model's versions, aliases and experiments."""
    async def work(admin: RegistryAdmin, _: Any) -> dict[str, Any]:
        return (await admin.state()).view()

    _emit(_run(config, profile, data_dir, work))


@registry_app.command("add-version")
def add_version(model: str, version: str,
                from_store: str | None = typer.Option(None, help="a model in the local store (name[:tag]): "
                                                                 "served by llama.cpp from its GGUF blob"),
                spec_file: Path | None = typer.Option(None, help="YAML/JSON: the serving fields of a models: entry"),
                engine_arg: list[str] = typer.Option([], help="an engine argument (repeat)"),
                config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
                data_dir: Path | None = DataDirOpt) -> None:
    """Register an immutable version (served once an alias or experiment points at it)."""
    spec: dict[str, Any] = {}
    if spec_file is not None:
        loaded = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            fail("the spec file must hold a mapping", 2)
        spec.update(loaded)
    digest = None
    if from_store is not None:
        from inferlab.modelstore import StoreError
        from inferlab.modelstore.cli import store_of

        store, _ = store_of(config, profile, data_dir)
        try:
            manifest = store.verify(from_store)
        except StoreError as exc:
            fail(str(exc))
        digest = manifest.model.digest
        spec = {"backend": "llamacpp", "path": str(store.blob_path(digest)), **spec}
    if engine_arg:
        spec["engine_args"] = [*spec.get("engine_args", []), *engine_arg]
    if not spec:
        fail("give --from-store or --spec-file", 2)

    async def work(admin: RegistryAdmin, _: Any) -> dict[str, Any]:
        return (await admin.add_version(model, version, spec, digest=digest)).view()

    _emit(_run(config, profile, data_dir, work))


@registry_app.command("rm-version")
def rm_version(model: str, version: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
               data_dir: Path | None = DataDirOpt) -> None:
    """Remove a version no alias or running experiment uses."""
    async def work(admin: RegistryAdmin, _: Any) -> None:
        await admin.remove_version(model, version)

    _run(config, profile, data_dir, work)
    _emit({"model": model, "version": version, "deleted": True})


@registry_app.command("alias")
def alias(model: str, name: str, version: str, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
          data_dir: Path | None = DataDirOpt) -> None:
    """Point MODEL@NAME at VERSION (e.g. `alias chat stable v2`)."""
    async def work(admin: RegistryAdmin, _: Any) -> None:
        await admin.set_alias(model, name, version)

    _run(config, profile, data_dir, work)
    _emit({"model": model, "alias": name, "version": version})


@registry_app.command("experiment")
def experiment(model: str, candidate: str, weight: float = typer.Option(0.05, help="the candidate's share"),
               kind: str = typer.Option("canary", help="canary or ab"),
               control: str | None = typer.Option(None, help="default: the stable alias"),
               unit: str | None = typer.Option(None, help="tenant, key, user or session"),
               config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
               data_dir: Path | None = DataDirOpt) -> None:
    """Start a canary or A/B test of CANDIDATE against the stable version."""
    if kind not in ("canary", "ab"):
        fail("kind is canary or ab", 2)

    async def work(admin: RegistryAdmin, _: Any) -> dict[str, Any]:
        return (await admin.start_experiment(model, candidate, control=control, kind=kind,  # type: ignore[arg-type]
                                             weight=weight, unit=unit)).view()

    _emit(_run(config, profile, data_dir, work))


@registry_app.command("ramp")
def ramp(experiment_id: str, weight: float, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
         data_dir: Path | None = DataDirOpt) -> None:
    """Set a running experiment's candidate weight."""
    async def work(admin: RegistryAdmin, _: Any) -> None:
        await admin.set_weight(experiment_id, weight)

    _run(config, profile, data_dir, work)
    _emit({"experiment": experiment_id, "weight": weight})


@registry_app.command("decide")
def decide(experiment_id: str, action: str = typer.Argument(..., help="promote, rollback or stop"),
           config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
           data_dir: Path | None = DataDirOpt) -> None:
    """End an experiment by hand (promote moves stable to the candidate)."""
    async def work(admin: RegistryAdmin, _: Any) -> bool:
        return await admin.end_experiment(experiment_id, action)

    _emit({"experiment": experiment_id, "action": action, "decided": _run(config, profile, data_dir, work)})


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
