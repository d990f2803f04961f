"""A deployment: which model, in which format, on which devices, served by which engine.

:func:`resolve_deployment` turns names (as typed on the command line or sent to the API) into a
validated :class:`Deployment`, raising :class:`~inferlab.errors.InvalidRequest` that names the
valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferlab.errors import InvalidRequest
from inferlab.planning.catalogue import Catalogue
from inferlab.planning.engines import EngineProfile, engine_profile
from inferlab.planning.specs import Accelerator, KVDtype, ModelSpec, WeightFormat


@dataclass(frozen=True)
class Parallelism:
    """How devices share the model: ``tensor`` ranks split every layer, ``pipeline`` stages split the
    layers; with ``expert`` the MoE layers place whole experts on the tensor ranks (expert
    parallelism) instead of sharding each expert over them."""

    tensor: int = 1
    pipeline: int = 1
    expert: bool = False

    @property
    def devices(self) -> int:
        return self.tensor * self.pipeline


@dataclass(frozen=True)
class Deployment:
    model: ModelSpec
    accelerator: Accelerator
    weights: WeightFormat
    kv_dtype: KVDtype
    engine: EngineProfile
    parallel: Parallelism = Parallelism()
    flash_attention: bool = True

    @property
    def devices(self) -> int:
        return self.parallel.devices

    def label(self) -> str:
        count = f"{self.devices}x " if self.devices > 1 else ""
        ep = ", EP" if self.parallel.expert and self.parallel.tensor > 1 and self.model.is_moe else ""
        return f"{self.model.id} {self.weights.name} on {count}{self.accelerator.id} ({self.engine.name}{ep})"


def resolve_deployment(
    catalogue: Catalogue,
    *,
    model: str,
    gpu: str,
    quant: str | None = None,
    kv_dtype: str = "f16",
    engine: str = "llama.cpp",
    gpus: int = 1,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    memory_gb: float | None = None,
    flash_attention: bool = True,
    expert_parallel: bool = False,
) -> Deployment:
    """Validate names and numbers; ``gpus`` devices are split the engine's usual way unless
    ``tensor_parallel``/``pipeline_parallel`` say otherwise."""
    spec = catalogue.model(model)
    accelerator = catalogue.accelerator(gpu)
    if memory_gb is not None:
        accelerator = accelerator.with_memory(memory_gb)
    profile = engine_profile(engine)
    fmt = catalogue.weight_format(quant or spec.weights_format or spec.native_dtype)
    return Deployment(
        model=spec,
        accelerator=accelerator,
        weights=fmt,
        kv_dtype=catalogue.kv_dtype(kv_dtype),
        engine=profile,
        parallel=replace(split_devices(profile, gpus, tensor_parallel, pipeline_parallel), expert=expert_parallel),
        flash_attention=flash_attention,
    )


def split_devices(profile: EngineProfile, gpus: int, tp: int | None, pp: int | None) -> Parallelism:
    for name, value in (("gpus", gpus), ("tensor_parallel", tp), ("pipeline_parallel", pp)):
        if value is not None and value < 1:
            raise InvalidRequest(f"{name} must be at least 1, got {value}", param=name)
    if tp is None and pp is None:
        if profile.multi_device == "layer_split":
            return Parallelism(tensor=1, pipeline=gpus)
        return Parallelism(tensor=gpus, pipeline=1)
    tensor = tp if tp is not None else max(1, gpus // (pp or 1))
    pipeline = pp if pp is not None else max(1, gpus // tensor)
    if tensor * pipeline != gpus and gpus != 1:
        raise InvalidRequest(
            f"tensor_parallel ({tensor}) x pipeline_parallel ({pipeline}) must equal gpus ({gpus})", param="gpus"
        )
    return Parallelism(tensor=tensor, pipeline=pipeline)
