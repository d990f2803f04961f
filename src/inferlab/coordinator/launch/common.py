"""Which engine module plans a spec's group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inferlab.coordinator.spec import DeploymentSpec, GroupPlan

Target = Literal["process", "pod"]


@dataclass(frozen=True, slots=True)
class Programs:
    """Where each engine's programs are (paths here; names on the image's PATH for pods)."""

    llama_server: str = "llama-server"
    rpc_server: str = "rpc-server"
    vllm: str = "vllm"
    python: str = "python3"


def group_plan(spec: DeploymentSpec, name: str, *, target: Target, programs: Programs = Programs(),
               api_key: str | None = None, ray_address: str | None = None) -> GroupPlan:
    """The group ``name`` of ``spec``: its ranks' command lines for ``target``."""
    if spec.engine == "llama.cpp":
        from inferlab.coordinator.launch.llamacpp import llamacpp_group

        return llamacpp_group(spec, name, target=target, programs=programs, api_key=api_key)
    if spec.engine == "vllm":
        from inferlab.coordinator.launch.vllm import vllm_group

        return vllm_group(spec, name, target=target, programs=programs, api_key=api_key, ray_address=ray_address)
    from inferlab.coordinator.launch.sglang import sglang_group

    return sglang_group(spec, name, target=target, programs=programs, api_key=api_key)
