"""The configuration file as the registry's seed: every configured model becomes a version (its
id derived from what serves it, so an edited entry is a new version) with ``stable`` pointing at
it unless an alias exists already; ``registry.versions`` and ``registry.aliases`` likewise. What
an operator changed through the admin API survives a restart: the seed never moves an alias."""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.config import ModelConfig, RegistrySettings
from inferlab.registry.model import STABLE, ModelVersion, split_ref
from inferlab.registry.protocol import RegistryStore

CONFIG_PREFIX = "cfg-"


def config_version(model: ModelConfig) -> ModelVersion:
    """The version a configured model stands for (served by its configured pool)."""
    spec = model.model_dump(mode="json", exclude={"name", "api_key"}, exclude_defaults=True)
    return ModelVersion(model.name, CONFIG_PREFIX + model.cache_version()[:12], spec)


@dataclass(frozen=True, slots=True)
class Seed:
    versions: list[ModelVersion]
    aliases: dict[tuple[str, str], str]
    static: dict[tuple[str, str], str]  # versions served by a configured pool → its name


def seed_of(models: list[ModelConfig], settings: RegistrySettings) -> Seed:
    versions: list[ModelVersion] = []
    aliases: dict[tuple[str, str], str] = {}
    static: dict[tuple[str, str], str] = {}
    for model in models:
        version = config_version(model)
        versions.append(version)
        aliases[(model.name, STABLE)] = version.version
        static[(model.name, version.version)] = model.name
    for seed in settings.versions:
        version = ModelVersion(seed.model, seed.version, dict(seed.spec), seed.digest, dict(seed.parameters))
        version.config()  # a spec that is no model entry fails at start-up, with the field named
        versions.append(version)
    for ref, version_id in settings.aliases.items():
        name, alias = split_ref(ref)
        aliases[(name, alias or STABLE)] = version_id
    return Seed(versions, aliases, static)


async def write_seed(store: RegistryStore, seed: Seed) -> None:
    for version in seed.versions:
        await store.add_version(version)
    for (model, alias), version_id in seed.aliases.items():
        await store.set_alias(model, alias, version_id, only_if_absent=True)
