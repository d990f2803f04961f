"""What the admin API and the CLI do to the registry: checked, then written to the store (whose
change counter every gateway polls). Versions are immutable; aliases move; experiments start,
ramp, and end by a decision (the judge's, or an operator's) that moves aliases in the same
transaction."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from inferlab.errors import InvalidRequest, NotFound
from inferlab.registry.model import STABLE, Experiment, ExperimentKind, ModelVersion, RegistryState, Variant
from inferlab.registry.protocol import RegistryStore
from inferlab.registry.stats import VariantStats

UNITS = ("tenant", "key", "user", "session")


class RegistryAdmin:
    def __init__(self, store: RegistryStore, *, stats: VariantStats | None = None,
                 changed: Callable[[], Awaitable[None]] | None = None, default_unit: str = "tenant") -> None:
        """``changed``: called after every write (the local gateway reloads at once, not at its next poll)."""
        self._store = store
        self._stats = stats
        self._changed = changed
        self._unit = default_unit

    async def _done(self) -> None:
        if self._changed is not None:
            await self._changed()

    async def state(self) -> RegistryState:
        return await self._store.load()

    async def add_version(self, model: str, version: str, spec: dict[str, Any], *, digest: str | None = None,
                          parameters: dict[str, Any] | None = None) -> ModelVersion:
        if "@" in model or "@" in version:
            raise InvalidRequest("model and version names may not contain '@'", param="model")
        if "name" in spec:
            raise InvalidRequest("the spec has no 'name': the version is named by model@version", param="spec")
        if spec.get("distributed"):
            raise InvalidRequest("distributed versions are not served by hot reload yet; configure them in models:",
                                 param="spec")
        created = ModelVersion(model, version, spec, digest, parameters or {})
        try:
            created.config()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidRequest(f"spec.{where}: {first['msg']}", param="spec") from None
        await self._store.add_version(created)
        await self._done()
        return created

    async def remove_version(self, model: str, version: str) -> None:
        await self._store.remove_version(model, version)
        await self._done()

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        await self._store.set_alias(model, alias, version)
        await self._done()

    async def delete_alias(self, model: str, alias: str) -> None:
        if alias == STABLE:
            raise InvalidRequest("'stable' cannot be deleted, only moved", param="alias")
        await self._store.delete_alias(model, alias)
        await self._done()

    async def start_experiment(self, model: str, candidate: str, *, control: str | None = None,
                               kind: ExperimentKind = "canary", weight: float = 0.05, unit: str | None = None,
                               salt: str | None = None) -> Experiment:
        if not 0 <= weight <= 1:
            raise InvalidRequest("weight must be between 0 and 1", param="weight")
        unit = unit or self._unit
        if unit not in UNITS:
            raise InvalidRequest(f"unit must be one of {', '.join(UNITS)}", param="unit")
        state = await self._store.load()
        if control is None:
            control = state.aliases.get((model, STABLE))
            if control is None:
                raise NotFound(f"model {model!r} has no stable alias to compare against", param="control")
        else:
            control = state.aliases.get((model, control), control)
        candidate = state.aliases.get((model, candidate), candidate)
        if control == candidate:
            raise InvalidRequest("control and candidate are the same version", param="candidate")
        experiment = Experiment("exp_" + secrets.token_hex(8), model, kind, control, candidate, weight, unit,
                                salt or secrets.token_hex(8))
        await self._store.create_experiment(experiment)
        await self._done()
        return experiment

    async def set_weight(self, experiment_id: str, weight: float) -> None:
        if not 0 <= weight <= 1:
            raise InvalidRequest("weight must be between 0 and 1", param="weight")
        await self._store.set_weight(experiment_id, weight)
        await self._done()

    async def end_experiment(self, experiment_id: str, action: str, *, reason: str = "operator",
                             evidence: dict[str, Any] | None = None) -> bool:
        """``promote`` (stable → candidate), ``rollback`` or ``stop`` (stable stays)."""
        state = await self._store.load()
        experiment = state.experiments.get(experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        states = {"promote": "promoted", "rollback": "rolled_back", "stop": "stopped"}
        if action not in states:
            raise InvalidRequest("action must be promote, rollback or stop", param="action")
        flips = {STABLE: experiment.candidate} if action == "promote" else {}
        decided = await self._store.decide(experiment_id, states[action],
                                           {"action": action, "reason": reason, "evidence": evidence or {}}, flips)
        await self._done()
        return decided

    async def figures(self, experiment_id: str) -> dict[str, Any]:
        return {variant: figures.view() for variant, figures in (await self._store.figures(experiment_id)).items()}

    async def feedback(self, experiment_id: str, variant: Variant, positive: bool) -> None:
        state = await self._store.load()
        experiment = state.experiments.get(experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id!r}")
        if self._stats is None:
            raise NotFound("feedback is taken by a running gateway")
        self._stats.feedback(experiment.model, experiment_id, variant, positive)
