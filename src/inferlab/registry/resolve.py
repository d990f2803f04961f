"""From the model a client names to the pool that serves it, over one registry snapshot.

``m@alias`` and ``m@version`` name a version; a bare ``m`` is the model's running experiment
(the caller's unit decides the variant, ``assignment``) or else ``m@stable``. A model the registry
does not know is served by its configured pool, as without the registry. When the chosen pool has
nothing routable, the model's fallbacks are tried in order.

Only versions with an alias or in a running experiment are served (have a pool); the rest are
registered but cold. ``holding`` counts the calls resolved to each pool and not yet ended, so that
a pool is removed only once nothing can still reach it (the drain).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from inferlab.errors import ModelNotFound
from inferlab.registry.assignment import assign
from inferlab.registry.model import STABLE, RegistryState, Variant, split_ref
from inferlab.router.pool import ModelRouter


@dataclass(frozen=True, slots=True)
class Resolution:
    model: str  # the model, without @selector
    pool: str  # the router's pool
    version: str | None = None  # None: a configured model the registry does not know
    experiment: str | None = None
    variant: Variant | None = None
    fallback_of: str | None = None  # the model first asked for, when a fallback serves it


def served_versions(state: RegistryState) -> set[tuple[str, str]]:
    """The versions that need a pool: aliased ones and those in a running experiment."""
    served = {(model, version) for (model, _), version in state.aliases.items()}
    for experiment in state.experiments.values():
        if experiment.state == "running":
            served |= {(experiment.model, experiment.control), (experiment.model, experiment.candidate)}
    return {key for key in served if key in state.versions}


class Resolver:
    def __init__(self, router: ModelRouter, *, fallbacks: Mapping[str, list[str]] | None = None,
                 static: Mapping[tuple[str, str], str] | None = None) -> None:
        """``static``: versions served by a configured model's pool (the config seed), to its name."""
        self._router = router
        self._fallbacks = dict(fallbacks or {})
        self._static = dict(static or {})
        self.state = RegistryState(counter=-1)
        self.holding: dict[str, int] = {}
        self.watchers: set[asyncio.Event] = set()  # set whenever a call lets go of its pool (drains wait on it)

    def install(self, state: RegistryState) -> None:
        """Serve from ``state`` from the next call on (its pools are in the router already)."""
        self.state = state

    def pool_of(self, model: str, version: str) -> str:
        return self._static.get((model, version)) or f"{model}@{version}"

    def resolve(self, ref: str, unit: Callable[[str], str]) -> Resolution:
        """``unit(kind)``: the caller's value of an assignment unit (tenant, key, user, session)."""
        first = self._one(ref, unit)
        if self._routable(first.pool):
            return first
        for fallback in self._fallbacks.get(first.model, ()):
            try:
                other = self._one(fallback, unit, experiments=False)
            except ModelNotFound:
                continue
            if self._routable(other.pool):
                return Resolution(other.model, other.pool, other.version, fallback_of=first.model)
        return first

    def _routable(self, pool: str) -> bool:
        found = self._router.pools.get(pool)
        return found is not None and found.is_ready()

    def _one(self, ref: str, unit: Callable[[str], str], *, experiments: bool = True) -> Resolution:
        state = self.state
        model, selector = split_ref(ref)
        if selector is not None:
            version = state.version(model, selector)
            if version is None:
                raise ModelNotFound(f"The model '{ref}' does not exist", param="model")
            pool = self.pool_of(model, version.version)
            if pool not in self._router.pools:
                raise ModelNotFound(f"The model version '{ref}' is registered but not served (give it an alias)",
                                    param="model")
            return Resolution(model, pool, version.version)
        experiment = state.running(model) if experiments else None
        if experiment is not None:
            variant = assign(unit(experiment.unit), experiment.salt, experiment.weight)
            version_id = experiment.version_of(variant)
            pool = self.pool_of(model, version_id)
            if pool in self._router.pools:
                return Resolution(model, pool, version_id, experiment.id, variant)
        stable = state.aliases.get((model, STABLE))
        if stable is not None and self.pool_of(model, stable) in self._router.pools:
            return Resolution(model, self.pool_of(model, stable), stable)
        if model in self._router.pools:
            return Resolution(model, model)  # a configured model the registry has no alias for
        raise ModelNotFound(f"The model '{ref}' does not exist", param="model")

    def hold(self, pool: str) -> None:
        self.holding[pool] = self.holding.get(pool, 0) + 1

    def let_go(self, pool: str) -> None:
        left = self.holding.get(pool, 0) - 1
        if left > 0:
            self.holding[pool] = left
        else:
            self.holding.pop(pool, None)
        for watcher in self.watchers:
            watcher.set()
