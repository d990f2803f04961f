"""The deployment spec of a configured model whose replicas are engine groups (``distributed:``)."""

from __future__ import annotations

import secrets

from inferlab.config import EMBEDDED_MODEL, EngineSettings, ModelConfig
from inferlab.coordinator.launch import group_plan
from inferlab.coordinator.launch.common import Programs
from inferlab.coordinator.locate import find_rpc_programs, resolve_model_path
from inferlab.coordinator.spec import DeploymentSpec, GroupParallelism, GroupPlan, RankResources


def deployment_from_model(model: ModelConfig, engines: EngineSettings) -> DeploymentSpec:
    distributed = model.distributed
    assert distributed is not None
    return DeploymentSpec(
        name=model.name, model=str(resolve_model_path(model.path or EMBEDDED_MODEL)), engine="llama.cpp",
        parallel=GroupParallelism(rpc_workers=distributed.rpc_workers),
        resources=RankResources(cpus=distributed.cpus_per_rank), replicas=model.replicas,
        context=model.context_size, max_sequences=model.parallel,
        threads=distributed.threads or engines.threads, extra_args=tuple(model.engine_args),
        placement=distributed.placement,
    )


def model_group_plan(spec: DeploymentSpec, engines: EngineSettings, name: str) -> GroupPlan:
    """One group of a configured model: the RPC build's programs, a fresh API key per group."""
    server, worker = find_rpc_programs(engines)
    return group_plan(spec, name, target="process", programs=Programs(str(server), str(worker)),
                      api_key=secrets.token_urlsafe(32))
