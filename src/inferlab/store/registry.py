"""The model registry in the SQL store (``inferlab.registry``): versions, aliases, experiments,
per-gateway variant figures, and the change counter every write bumps in its own transaction
(gateways poll the counter and reload when it moved)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inferlab.errors import Conflict, NotFound
from inferlab.registry.model import Experiment, ModelVersion, RegistryState, Variant
from inferlab.registry.stats import Figures
from inferlab.store.engine import Database
from inferlab.store.guard import bounded
from inferlab.store.models import (
    ExperimentRow,
    ExperimentStatsRow,
    ModelAliasRow,
    ModelVersionRow,
    RegistryCounterRow,
)


def _now() -> datetime:
    return datetime.now(UTC)


async def _bump(session: AsyncSession) -> None:
    await session.execute(update(RegistryCounterRow).where(RegistryCounterRow.id == 1)
                          .values(value=RegistryCounterRow.value + 1))


def _version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(row.model, row.version, dict(row.spec), row.digest, dict(row.parameters), row.created_at)


def _experiment(row: ExperimentRow) -> Experiment:
    return Experiment(row.id, row.model, row.kind, row.control, row.candidate, row.weight,  # type: ignore[arg-type]
                      row.unit, row.salt, row.state, row.created_at, row.decided_at,  # type: ignore[arg-type]
                      dict(row.decision) if row.decision is not None else None)


class SqlRegistryStore:
    """``RegistryStore`` on SQLite or PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._db = database

    @bounded
    async def counter(self) -> int:
        async with self._db.sessions() as session:
            return int(await session.scalar(select(RegistryCounterRow.value).where(RegistryCounterRow.id == 1)) or 0)

    @bounded
    async def load(self) -> RegistryState:
        async with self._db.sessions.begin() as session:
            counter = int(await session.scalar(select(RegistryCounterRow.value).where(RegistryCounterRow.id == 1)) or 0)
            versions = {(r.model, r.version): _version(r) for r in (await session.scalars(select(ModelVersionRow))).all()}
            aliases = {(r.model, r.alias): r.version for r in (await session.scalars(select(ModelAliasRow))).all()}
            experiments = {r.id: _experiment(r) for r in (await session.scalars(select(ExperimentRow))).all()}
        return RegistryState(counter, versions, aliases, experiments)

    @bounded
    async def add_version(self, version: ModelVersion) -> bool:
        """True when added; False when the same version was there already (a seed written twice).
        ``Conflict`` when a different version of that id exists: versions are immutable."""
        async with self._db.sessions.begin() as session:
            row = await session.get(ModelVersionRow, (version.model, version.version))
            if row is not None:
                if dict(row.spec) != version.spec or row.digest != version.digest:
                    raise Conflict(f"version {version.version!r} of {version.model!r} exists with other contents; "
                                   "versions are immutable: register a new one")
                return False
            session.add(ModelVersionRow(model=version.model, version=version.version, spec=version.spec,
                                        digest=version.digest, parameters=version.parameters,
                                        created_at=version.created_at or _now()))
            await _bump(session)
        return True

    @bounded
    async def remove_version(self, model: str, version: str) -> None:
        async with self._db.sessions.begin() as session:
            if await session.get(ModelVersionRow, (model, version)) is None:
                raise NotFound(f"model {model!r} has no version {version!r}")
            aliased = (await session.scalars(select(ModelAliasRow.alias).where(
                ModelAliasRow.model == model, ModelAliasRow.version == version))).all()
            if aliased:
                raise Conflict(f"{model}@{version} is still aliased as {', '.join(sorted(aliased))}: move them first")
            running = await session.scalar(select(ExperimentRow.id).where(
                ExperimentRow.model == model, ExperimentRow.state == "running",
                (ExperimentRow.control == version) | (ExperimentRow.candidate == version)))
            if running is not None:
                raise Conflict(f"{model}@{version} is in the running experiment {running}: stop it first")
            await session.execute(delete(ModelVersionRow).where(ModelVersionRow.model == model,
                                                                ModelVersionRow.version == version))
            await _bump(session)

    @bounded
    async def set_alias(self, model: str, alias: str, version: str, *, only_if_absent: bool = False) -> bool:
        async with self._db.sessions.begin() as session:
            if await session.get(ModelVersionRow, (model, version)) is None:
                raise NotFound(f"model {model!r} has no version {version!r}")
            row = await session.get(ModelAliasRow, (model, alias))
            if row is not None and (only_if_absent or row.version == version):
                return False
            if row is None:
                session.add(ModelAliasRow(model=model, alias=alias, version=version, updated_at=_now()))
            else:
                row.version, row.updated_at = version, _now()
            await _bump(session)
        return True

    @bounded
    async def delete_alias(self, model: str, alias: str) -> None:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(ModelAliasRow).where(ModelAliasRow.model == model,
                                                                       ModelAliasRow.alias == alias))
            if not getattr(result, "rowcount", 0):
                raise NotFound(f"model {model!r} has no alias {alias!r}")
            await _bump(session)

    @bounded
    async def create_experiment(self, experiment: Experiment) -> None:
        async with self._db.sessions.begin() as session:
            for version in (experiment.control, experiment.candidate):
                if await session.get(ModelVersionRow, (experiment.model, version)) is None:
                    raise NotFound(f"model {experiment.model!r} has no version {version!r}")
            running = await session.scalar(select(ExperimentRow.id).where(
                ExperimentRow.model == experiment.model, ExperimentRow.state == "running"))
            if running is not None:
                raise Conflict(f"model {experiment.model!r} already runs experiment {running}")
            session.add(ExperimentRow(
                id=experiment.id, model=experiment.model, kind=experiment.kind, control=experiment.control,
                candidate=experiment.candidate, weight=experiment.weight, unit=experiment.unit, salt=experiment.salt,
                state="running", created_at=experiment.created_at or _now(), decided_at=None, decision=None))
            await _bump(session)

    @bounded
    async def set_weight(self, experiment_id: str, weight: float) -> None:
        async with self._db.sessions.begin() as session:
            result = await session.execute(update(ExperimentRow).where(
                ExperimentRow.id == experiment_id, ExperimentRow.state == "running").values(weight=weight))
            if not getattr(result, "rowcount", 0):
                raise NotFound(f"no running experiment {experiment_id!r}")
            await _bump(session)

    @bounded
    async def decide(self, experiment_id: str, state: str, decision: dict[str, Any],
                     flips: dict[str, str]) -> bool:
        """End a running experiment with ``state`` and its evidence, moving the model's aliases in
        ``flips`` (alias → version) in the same transaction. False when it had ended already (another
        gateway decided first)."""
        async with self._db.sessions.begin() as session:
            result = await session.execute(update(ExperimentRow).where(
                ExperimentRow.id == experiment_id, ExperimentRow.state == "running").values(
                state=state, decision=decision, decided_at=_now()))
            if not getattr(result, "rowcount", 0):
                return False
            model = await session.scalar(select(ExperimentRow.model).where(ExperimentRow.id == experiment_id))
            for alias, version in flips.items():
                row = await session.get(ModelAliasRow, (model, alias))
                if row is None:
                    session.add(ModelAliasRow(model=model, alias=alias, version=version, updated_at=_now()))
                else:
                    row.version, row.updated_at = version, _now()
            await _bump(session)
        return True

    @bounded
    async def write_figures(self, gateway: str, rows: list[tuple[str, Variant, Figures]]) -> None:
        """This gateway's cumulative figures (its row per experiment and variant, replaced)."""
        if not rows:
            return
        async with self._db.sessions.begin() as session:
            for experiment, variant, figures in rows:
                row = await session.get(ExperimentStatsRow, (experiment, variant, gateway))
                if row is None:
                    session.add(ExperimentStatsRow(experiment=experiment, variant=variant, gateway=gateway,
                                                   figures=figures.to_json(), updated_at=_now()))
                else:
                    row.figures, row.updated_at = figures.to_json(), _now()

    @bounded
    async def figures(self, experiment: str) -> dict[str, Figures]:
        """Every gateway's figures of the experiment, summed per variant."""
        async with self._db.sessions() as session:
            rows = (await session.scalars(select(ExperimentStatsRow).where(
                ExperimentStatsRow.experiment == experiment))).all()
        summed: dict[str, Figures] = {"control": Figures(), "candidate": Figures()}
        for row in rows:
            summed.setdefault(row.variant, Figures()).add(Figures.from_json(dict(row.figures)))
        return summed
