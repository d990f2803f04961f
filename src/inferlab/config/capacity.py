"""``capacity:``: what ``inferlab capacity plan`` sizes each model's pool with — the throughput one
replica sustains within the SLO (measured: a benchmark report or a number), its hardware and price."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, model_validator

from inferlab.config.base import StrictModel


class ModelCapacity(StrictModel):
    replica_requests_per_s: float | None = Field(
        None, gt=0, description="requests per second one replica serves within the SLO (measured)")
    benchmark_report: Path | None = Field(
        None, description="an `inferlab bench` JSON report of one replica: its request_throughput, if its "
                          "p95 TTFT met slo_ttft_ms")
    slo_ttft_ms: float = Field(2000.0, gt=0, description="the TTFT (p95) a replica's throughput must keep")
    hardware: str | None = Field(None, description="the planning catalogue's accelerator id (e.g. l4, h100-sxm)")
    devices: int = Field(1, ge=1, description="accelerators per replica")
    usd_per_hour: Decimal | None = Field(None, ge=0, description="one replica's hourly cost (wins over the catalogue)")
    replicas: int | None = Field(None, ge=0, description="replicas running now; default: the model's configuration")
    catalogue_model: str | None = Field(
        None, description="the planning catalogue's model id (e.g. llama-3.1-8b): with hardware, the planning "
                          "toolkit's estimate of a replica's throughput at the SLO, which the measurement calibrates "
                          "(or stands in for, flagged, when nothing was measured)")
    engine: str = Field("llama.cpp", description="the planning toolkit's engine profile for the estimate")
    min_tokens_per_s: float = Field(10.0, gt=0, description="the SLO's decode speed per stream, for the estimate")

    @model_validator(mode="after")
    def _one_measure(self) -> ModelCapacity:
        if self.replica_requests_per_s is not None and self.benchmark_report is not None:
            raise ValueError("give replica_requests_per_s or benchmark_report, not both")
        return self


class CapacitySettings(StrictModel):
    models: dict[str, ModelCapacity] = Field(default_factory=dict, description="model name → its replicas' capacity")
    target_utilisation: float = Field(0.7, gt=0, le=1, description="share of a replica's SLO throughput to plan for")
    history_days: int = Field(28, ge=3, le=365, description="hourly usage history the forecast is fitted on")
    horizon_days: int = Field(7, ge=1, le=28, description="how far ahead the plan looks")
    holdout_hours: int = Field(48, ge=6, le=336, description="hours held out to backtest the forecast")
    quantile_z: float = Field(1.645, ge=0, description="plan for forecast + z·σ per hour (1.645: the 95th percentile)")
