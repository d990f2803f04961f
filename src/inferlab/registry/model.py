"""The registry's plain data: immutable versions, movable aliases, experiments, and one snapshot
of them all with the store's change counter (what every gateway serves from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from inferlab.config import ModelConfig

STABLE = "stable"
CANARY = "canary"
ExperimentKind = Literal["canary", "ab"]
ExperimentState = Literal["running", "promoted", "rolled_back", "stopped"]
Variant = Literal["control", "candidate"]
VARIANTS: tuple[Variant, Variant] = ("control", "candidate")


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"m@stable"`` → ``("m", "stable")``; ``"m"`` → ``("m", None)``."""
    model, at, selector = ref.partition("@")
    return model, (selector if at else None)


def pool_name(model: str, version: str) -> str:
    """The pool that serves one version of a model."""
    return f"{model}@{version}"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version: what serves it (a ``models:`` entry without its name), its artefact's
    digest, and its default parameters."""

    model: str
    version: str
    spec: dict[str, Any]
    digest: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def pool(self) -> str:
        return pool_name(self.model, self.version)

    def config(self) -> ModelConfig:
        """The model entry its pool is built from (named after the pool)."""
        return ModelConfig.model_validate({**self.spec, "name": self.pool})

    def view(self) -> dict[str, Any]:
        return {"object": "model.version", "model": self.model, "version": self.version, "spec": _public(self.spec),
                "digest": self.digest, "parameters": self.parameters,
                "created_at": self.created_at.isoformat() if self.created_at else None}


def _public(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: ("***" if key == "api_key" and value else value) for key, value in spec.items()}


@dataclass(frozen=True, slots=True)
class Experiment:
    """A split of a model's traffic between two versions by a stable hash of ``unit``."""

    id: str
    model: str
    kind: ExperimentKind
    control: str
    candidate: str
    weight: float  # the candidate's share, 0..1
    unit: str
    salt: str
    state: ExperimentState = "running"
    created_at: datetime | None = None
    decided_at: datetime | None = None
    decision: dict[str, Any] | None = None

    def version_of(self, variant: Variant) -> str:
        return self.control if variant == "control" else self.candidate

    def view(self) -> dict[str, Any]:
        return {"object": "experiment", "id": self.id, "model": self.model, "kind": self.kind,
                "control": self.control, "candidate": self.candidate, "weight": self.weight, "unit": self.unit,
                "salt": self.salt, "state": self.state,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "decided_at": self.decided_at.isoformat() if self.decided_at else None, "decision": self.decision}


@dataclass(frozen=True, slots=True)
class RegistryState:
    """Everything the registry holds at one value of its change counter."""

    counter: int
    versions: dict[tuple[str, str], ModelVersion] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    experiments: dict[str, Experiment] = field(default_factory=dict)

    def models(self) -> list[str]:
        return sorted({model for model, _ in self.versions})

    def running(self, model: str) -> Experiment | None:
        """The model's running experiment (at most one runs per model)."""
        return next((e for e in self.experiments.values() if e.model == model and e.state == "running"), None)

    def version(self, model: str, selector: str) -> ModelVersion | None:
        """A version by alias or by its own id."""
        version = self.aliases.get((model, selector), selector)
        return self.versions.get((model, version))

    def aliases_of(self, model: str) -> dict[str, str]:
        return {alias: version for (m, alias), version in self.aliases.items() if m == model}

    def view(self) -> dict[str, Any]:
        models = []
        for model in self.models():
            versions = [v.view() for (m, _), v in sorted(self.versions.items()) if m == model]
            models.append({"model": model, "aliases": self.aliases_of(model), "versions": versions})
        return {"object": "registry", "counter": self.counter, "models": models,
                "experiments": [e.view() for e in self.experiments.values()]}
