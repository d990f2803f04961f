"""The model registry's store on every backend: immutable versions, aliases, experiments decided
once, figures summed across gateways, and a change counter that every write moves."""

from __future__ import annotations

import pytest

from inferlab.errors import Conflict, NotFound
from inferlab.registry.model import Experiment, ModelVersion
from inferlab.registry.stats import Figures
from inferlab.store import Database
from inferlab.store.registry import SqlRegistryStore

SPEC = {"backend": "openai", "url": "http://127.0.0.1:9/v1"}


async def test_versions_are_immutable_and_aliases_move(database: Database) -> None:
    store = SqlRegistryStore(database)
    before = await store.counter()
    assert await store.add_version(ModelVersion("m", "v1", SPEC, "sha256:" + "a" * 64, {"temperature": 0.2}))
    assert not await store.add_version(ModelVersion("m", "v1", SPEC, "sha256:" + "a" * 64))  # the seed, again
    with pytest.raises(Conflict):
        await store.add_version(ModelVersion("m", "v1", {**SPEC, "url": "http://127.0.0.1:10/v1"}))
    await store.add_version(ModelVersion("m", "v2", SPEC))
    assert await store.set_alias("m", "stable", "v1")
    assert not await store.set_alias("m", "stable", "v2", only_if_absent=True)
    await store.set_alias("m", "canary", "v2")
    with pytest.raises(NotFound):
        await store.set_alias("m", "stable", "v9")
    state = await store.load()
    assert state.counter > before
    assert state.aliases == {("m", "stable"): "v1", ("m", "canary"): "v2"}
    assert state.version("m", "stable") == state.versions[("m", "v1")]
    assert state.versions[("m", "v1")].parameters == {"temperature": 0.2}
    with pytest.raises(Conflict):
        await store.remove_version("m", "v2")  # still aliased
    await store.delete_alias("m", "canary")
    await store.remove_version("m", "v2")
    with pytest.raises(NotFound):
        await store.remove_version("m", "v2")
    assert set((await store.load()).versions) == {("m", "v1")}


async def test_one_running_experiment_decided_once(database: Database) -> None:
    store = SqlRegistryStore(database)
    for version in ("v1", "v2"):
        await store.add_version(ModelVersion("m", version, SPEC))
    await store.set_alias("m", "stable", "v1")
    experiment = Experiment("exp_" + "0" * 16, "m", "canary", "v1", "v2", 0.1, "tenant", "salt")
    await store.create_experiment(experiment)
    with pytest.raises(Conflict):
        await store.create_experiment(Experiment("exp_" + "1" * 16, "m", "ab", "v1", "v2", 0.5, "user", "s"))
    with pytest.raises(Conflict):
        await store.remove_version("m", "v2")  # in the running experiment
    await store.set_weight(experiment.id, 0.25)
    assert (await store.load()).running("m").weight == 0.25  # type: ignore[union-attr]
    await store.write_figures("gw-1", [(experiment.id, "candidate", Figures(requests=10, errors=2))])
    await store.write_figures("gw-2", [(experiment.id, "candidate", Figures(requests=5, errors=1)),
                                       (experiment.id, "control", Figures(requests=90))])
    await store.write_figures("gw-1", [(experiment.id, "candidate", Figures(requests=12, errors=2))])  # replaced
    figures = await store.figures(experiment.id)
    assert (figures["candidate"].requests, figures["candidate"].errors, figures["control"].requests) == (17, 3, 90)
    assert await store.decide(experiment.id, "promoted", {"action": "promote"}, {"stable": "v2"})
    assert not await store.decide(experiment.id, "rolled_back", {"action": "rollback"}, {})  # the other gateway
    state = await store.load()
    assert state.experiments[experiment.id].state == "promoted"
    assert state.experiments[experiment.id].decision == {"action": "promote"}
    assert state.aliases[("m", "stable")] == "v2" and state.running("m") is None
