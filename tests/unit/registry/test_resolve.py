"""Resolution over one registry state: aliases, explicit versions, cold versions, experiments,
fallbacks when a pool has nothing routable, and configured models the registry does not know."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inferlab.errors import ModelNotFound
from inferlab.registry.model import Experiment, ModelVersion, RegistryState
from inferlab.registry.resolve import Resolver, served_versions
from inferlab.router import BackendPool, ModelRouter
from tests.unit.router.fakes import FakeBackend

SPEC = {"backend": "openai", "url": "http://127.0.0.1:9/v1"}


def _router(*names: str) -> tuple[ModelRouter, dict[str, FakeBackend]]:
    backends = {name: FakeBackend(name) for name in names}
    return ModelRouter([BackendPool(name, [backend]) for name, backend in backends.items()]), backends


def _state(**experiments: Experiment) -> RegistryState:
    versions = {("chat", v): ModelVersion("chat", v, SPEC) for v in ("v1", "v2", "v3")}
    versions[("small", "s1")] = ModelVersion("small", "s1", SPEC)
    aliases = {("chat", "stable"): "v1", ("chat", "canary"): "v2", ("small", "stable"): "s1"}
    return RegistryState(7, versions, aliases, dict(experiments))


def _unit(value: str) -> Callable[[str], str]:
    return lambda kind: value


def test_aliases_versions_and_cold_versions() -> None:
    router, _ = _router("chat@v1", "chat@v2", "small@s1", "configured")
    resolver = Resolver(router)
    resolver.install(_state())
    assert served_versions(resolver.state) == {("chat", "v1"), ("chat", "v2"), ("small", "s1")}
    assert resolver.resolve("chat", _unit("u")).pool == "chat@v1"
    assert resolver.resolve("chat@canary", _unit("u")).version == "v2"
    assert resolver.resolve("chat@v2", _unit("u")).pool == "chat@v2"
    assert resolver.resolve("configured", _unit("u")).pool == "configured"
    with pytest.raises(ModelNotFound, match="not served"):
        resolver.resolve("chat@v3", _unit("u"))  # registered, no alias: cold
    with pytest.raises(ModelNotFound):
        resolver.resolve("chat@nope", _unit("u"))
    with pytest.raises(ModelNotFound):
        resolver.resolve("nope", _unit("u"))


def test_an_experiment_splits_by_unit_and_stays_put() -> None:
    router, _ = _router("chat@v1", "chat@v2")
    resolver = Resolver(router)
    experiment = Experiment("exp_" + "a" * 16, "chat", "canary", "v1", "v2", 0.5, "user", "salt")
    resolver.install(_state(e=experiment))
    first = {user: resolver.resolve("chat", _unit(user)) for user in (f"u{i}" for i in range(200))}
    assert {r.variant for r in first.values()} == {"control", "candidate"}
    assert all(r.experiment == experiment.id and r.variant is not None
               and r.version == experiment.version_of(r.variant) for r in first.values())
    again = {user: resolver.resolve("chat", _unit(user)).variant for user in first}
    assert again == {user: r.variant for user, r in first.items()}
    assert resolver.resolve("chat@stable", _unit("u0")).experiment is None


def test_fallbacks_when_nothing_is_routable() -> None:
    router, backends = _router("chat@v1", "small@s1")
    resolver = Resolver(router, fallbacks={"chat": ["missing", "small"]})
    resolver.install(_state())
    assert resolver.resolve("chat", _unit("u")).pool == "chat@v1"
    backends["chat@v1"].available = False
    resolution = resolver.resolve("chat", _unit("u"))
    assert (resolution.pool, resolution.fallback_of) == ("small@s1", "chat")
    backends["small@s1"].available = False
    assert resolver.resolve("chat", _unit("u")).pool == "chat@v1"  # its own 503


def test_holding_counts_calls_until_they_end() -> None:
    router, _ = _router("chat@v1")
    resolver = Resolver(router)
    resolver.hold("chat@v1")
    resolver.hold("chat@v1")
    resolver.let_go("chat@v1")
    assert resolver.holding == {"chat@v1": 1}
    resolver.let_go("chat@v1")
    assert resolver.holding == {}
