"""Request shapes shared by the CLI and the HTTP API (validated once, here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferlab.errors import InvalidRequest


class DeploymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="catalogue model id")
    gpu: str = Field(min_length=1, description="catalogue accelerator id")
    quant: str | None = Field(None, description="weight format: fp16, fp8, int4, Q4_K_M...")
    kv_dtype: str = "f16"
    engine: str = "llama.cpp"
    gpus: int = Field(1, ge=1, le=4096)
    tensor_parallel: int | None = Field(None, ge=1, le=4096)
    pipeline_parallel: int | None = Field(None, ge=1, le=4096)
    memory_gb: float | None = Field(None, gt=0, description="memory size for Apple/CPU devices")
    flash_attention: bool = True
    expert_parallel: bool = Field(False, description="MoE: place whole experts on the GPUs instead of sharding them")


class VramIn(DeploymentIn):
    context: int = Field(4096, gt=0, le=1 << 24)
    batch: int = Field(1, gt=0, le=1 << 20)


class EstimateIn(DeploymentIn):
    prompt_tokens: int = Field(512, gt=0, le=1 << 24)
    output_tokens: int = Field(256, gt=0, le=1 << 24)
    concurrency: int = Field(1, gt=0, le=1 << 20)
    context: int | None = Field(None, gt=0, le=1 << 24, description="context the server holds; default prompt+output")
    draft_tokens: int | None = Field(None, ge=1, le=64, description="speculative decoding: tokens drafted per step")
    acceptance_length: float | None = Field(None, ge=1, description="speculative decoding: tokens emitted per step")
    draft_params_b: float = Field(1.0, gt=0, description="speculative decoding: parameters (billions) one draft pass reads")


class CostIn(DeploymentIn):
    prompt_tokens: int = Field(512, gt=0, le=1 << 24)
    output_tokens: int = Field(256, gt=0, le=1 << 24)
    utilisation: float = Field(0.5, gt=0, le=1)
    setting: Literal["home", "datacenter"] = "datacenter"
    rent_usd_per_hour: float | None = Field(None, gt=0, description="per device; default: catalogue price")
    purchase_usd: float | None = Field(None, ge=0, description="all devices; default: catalogue price")
    power_w: float | None = Field(None, gt=0)
    electricity_usd_per_kwh: float | None = Field(None, ge=0)
    pue: float | None = Field(None, ge=1)
    amortisation_years: float | None = Field(None, gt=0)
    colo_usd_per_kw_month: float | None = Field(None, ge=0)
    reserved: bool = False
    context: int | None = Field(None, gt=0, le=1 << 24, description="context the server holds; default prompt+output")
    hours_per_day: float = Field(24.0, gt=0, le=24, description="hours a day the rented box runs (24: never stopped)")
    billing_increment_s: float | None = Field(None, gt=0, description="rental billing increment; default: the provider's")
    billing_minimum_s: float | None = Field(None, ge=0, description="minimum billed per session; default: the provider's")


class CapacityIn(DeploymentIn):
    users: int | None = Field(None, ge=1)
    active_fraction: float = Field(0.1, gt=0, le=1)
    requests_per_active_user_per_minute: float = Field(1.0, gt=0)
    requests_per_second: float | None = Field(None, gt=0)
    prompt_tokens: int = Field(512, gt=0, le=1 << 24)
    output_tokens: int = Field(256, gt=0, le=1 << 24)
    slo_ttft_s: float = Field(2.0, gt=0)
    slo_tokens_per_s: float = Field(10.0, gt=0)
    target_utilisation: float = Field(0.7, gt=0, le=1)


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate ``data`` into ``model`` or raise InvalidRequest naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", param=None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequest(f"{param}: {first['msg']}" if param else first["msg"], param=param) from exc
